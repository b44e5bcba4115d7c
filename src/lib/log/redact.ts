// Tokens must never reach a log line. Redaction works on two levels: field names that always hold secrets, and
// token shapes that can hide inside any string (an error message quoting a header, a URL with a token).

const REDACTED = '[REDACTED]';

const SECRET_KEY = /(^|[-_.])(token|authorization|password|passwd|secret|private[-_]?key|credentials?|cookie)$/i;

const SECRET_PATTERNS: readonly RegExp[] = [
  // JWTs: Kubernetes service-account tokens, Google ID tokens.
  /\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/g,
  // Google OAuth2 access tokens.
  /\bya29\.[\w.-]+/g,
  // Authorization header values of any scheme.
  /\b(Bearer|Basic)\s+[\w.~+/=-]+/gi,
  // PEM private keys.
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
];

export function redactString(text: string): string {
  let out = text;
  for (const pattern of SECRET_PATTERNS) {
    out = out.replace(pattern, (_match, scheme: unknown) =>
      typeof scheme === 'string' && /^(bearer|basic)$/i.test(scheme) ? `${scheme} ${REDACTED}` : REDACTED,
    );
  }
  return out;
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** A deep copy of `value` with secret-named fields and token-shaped strings replaced. */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (value instanceof Error) return redactString(value.message);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSecretKey(k) && v !== undefined && v !== '' ? REDACTED : redact(v, depth + 1);
  }
  return out;
}
