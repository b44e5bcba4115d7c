// The test cluster has no kubelet and no controllers: an installer Job or DaemonSet pod never runs. These write the
// status the job controller and kubelet would have reported, through the status subresource.
import type { TestKube } from '../support/kube.ts';

export const JOBS = '/apis/batch/v1/namespaces/kube-system/jobs';
export const PODS = '/api/v1/namespaces/kube-system/pods';

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

async function setJobStatus(kube: TestKube, name: string, status: Record<string, unknown>): Promise<void> {
  const job = await kube.get<Record<string, unknown>>(`${JOBS}/${name}`);
  await kube.request('PUT', `${JOBS}/${name}/status`, { ...job, status });
}

/** A Job that ran to completion. */
export async function simulateSuccess(kube: TestKube, name: string): Promise<void> {
  const t = now();
  await setJobStatus(kube, name, {
    startTime: t,
    completionTime: t,
    succeeded: 1,
    conditions: [
      { type: 'SuccessCriteriaMet', status: 'True', lastProbeTime: t, lastTransitionTime: t },
      { type: 'Complete', status: 'True', lastProbeTime: t, lastTransitionTime: t },
    ],
  });
}

/** A Job whose pods failed backoffLimit + 1 times. */
export async function simulateFailure(kube: TestKube, name: string): Promise<void> {
  const t = now();
  const failed = { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' };
  await setJobStatus(kube, name, {
    startTime: t,
    failed: 3,
    conditions: [
      { type: 'FailureTarget', status: 'True', lastProbeTime: t, lastTransitionTime: t, ...failed },
      { type: 'Failed', status: 'True', lastProbeTime: t, lastTransitionTime: t, ...failed },
    ],
  });
}
