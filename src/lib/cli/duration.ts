// kubectl's durations (`--timeout=30s`, `5m`, `1h30m`, `500ms`); a bare number is seconds.
import { UsageError } from '../errors.ts';

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds in a duration such as `90s`, `1m30s`, `2h`, `500ms` or `45` (seconds). */
export function parseDuration(text: string): number {
  const value = text.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== value) {
    throw new UsageError(`invalid duration "${text}"`, { hints: ['a duration like 30s, 5m, 1h30m or 500ms'] });
  }
  return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * (UNITS[p[2] ?? 's'] ?? 1000), 0));
}

/** `90000` -> `1m30s`, `1500` -> `1.5s`: the shortest way to say it back. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}
