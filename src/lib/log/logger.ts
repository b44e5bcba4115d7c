// Structured logging to stderr. On a terminal: short human lines. Elsewhere (containers, CI, pipes): one JSON
// object per line with a `severity` field, which Cloud Logging and most collectors parse as is.
import type { Writable } from 'node:stream';
import { redact, redactString } from './redact.ts';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Readonly<Record<string, unknown>>;
export type LogFormat = 'human' | 'json';

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SEVERITY: Record<Level, string> = { debug: 'DEBUG', info: 'INFO', warn: 'WARNING', error: 'ERROR' };

export interface Logger {
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
  /** A logger whose lines all carry `fields` (e.g. the component name). */
  with(fields: Fields): Logger;
}

export interface LoggerOptions {
  readonly stream: Writable;
  readonly format: LogFormat;
  readonly level?: Level;
  readonly now?: () => Date;
}

export function isLevel(value: string): value is Level {
  return value in RANK;
}

export function createLogger(options: LoggerOptions, bound: Fields = {}): Logger {
  const threshold = RANK[options.level ?? 'info'];
  const now = options.now ?? (() => new Date());
  const write = (level: Level, message: string, fields: Fields = {}): void => {
    if (RANK[level] < threshold) return;
    const all = redact({ ...bound, ...fields }) as Record<string, unknown>;
    const text = redactString(message);
    options.stream.write(
      options.format === 'json'
        ? `${JSON.stringify({ severity: SEVERITY[level], time: now().toISOString(), message: text, ...all })}\n`
        : humanLine(level, text, all),
    );
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    with: (fields) => createLogger(options, { ...bound, ...fields }),
  };
}

function humanLine(level: Level, message: string, fields: Record<string, unknown>): string {
  const prefix = level === 'info' ? '' : `${level}: `;
  const pairs = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return `${prefix}${message}${pairs.length > 0 ? ` ${pairs.join(' ')}` : ''}\n`;
}

/** A logger that drops everything, for services called where nobody listens. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  with: () => silentLogger,
};
