// `krun run --print-config`: one line per setting with its value and where it came from. Token-shaped values are
// redacted like log lines.
import { redact } from '../log/redact.ts';

export function formatSettings(settings: Record<string, { value: unknown; source: string }>): string {
  const rows = Object.entries(redact(settings) as typeof settings).map(([key, { value, source }]) => [
    key,
    value === undefined ? '-' : typeof value === 'string' ? value : JSON.stringify(value),
    source,
  ]);
  const width = (i: number) => Math.max(...rows.map((r) => (r[i] ?? '').length), i === 0 ? 7 : 5);
  const [a, b] = [width(0), width(1)];
  const line = (r: string[]) => `${(r[0] ?? '').padEnd(a)}  ${(r[1] ?? '').padEnd(b)}  ${r[2] ?? ''}`.trimEnd();
  return `${[line(['SETTING', 'VALUE', 'SOURCE']), ...rows.map(line)].join('\n')}\n`;
}
