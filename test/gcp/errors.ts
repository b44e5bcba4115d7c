// How the tests read a failed call's Google status, whichever client made it: discovery clients (@googleapis/*)
// and google-gax 5 clients reject with a GaxiosError carrying the Google error body; google-gax 6 clients reject
// with a GoogleError carrying the gRPC code.
import assert from 'node:assert/strict';

const GRPC_STATUS: Readonly<Record<number, string>> = {
  3: 'INVALID_ARGUMENT',
  5: 'NOT_FOUND',
  6: 'ALREADY_EXISTS',
  7: 'PERMISSION_DENIED',
  10: 'ABORTED',
  16: 'UNAUTHENTICATED',
};

/** `[HTTP status or gRPC code, Google status, message]` of the rejection. */
export async function failure(promise: Promise<unknown>): Promise<[number, string, string]> {
  try {
    await promise;
  } catch (err) {
    const e = err as {
      status?: number;
      code?: number | string;
      details?: unknown;
      message?: string;
      response?: { data?: { error?: { status?: string; message?: string } } };
    };
    const data = e.response?.data?.error;
    if (data?.status) return [e.status ?? 0, data.status, data.message ?? ''];
    try {
      const body = JSON.parse(e.message ?? '') as { error?: { code?: number; status?: string; message?: string } };
      if (body.error?.status) return [body.error.code ?? 0, body.error.status, body.error.message ?? ''];
    } catch {}
    if (typeof e.code === 'number')
      return [
        e.code,
        GRPC_STATUS[e.code] ?? String(e.code),
        typeof e.details === 'string' ? e.details : (e.message ?? ''),
      ];
    throw err;
  }
  assert.fail('expected the call to fail');
}
