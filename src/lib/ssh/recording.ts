// Session recording in asciinema's v2 format (a JSON header line, then one [seconds, code, data] line per event):
// `asciinema play` replays it. Output ("o") always, input ("i") only when asked (it holds whatever was typed,
// passwords included), window sizes ("r"). Files are created exclusively with mode 0600 in a 0700 directory and
// written synchronously, so a file is complete as soon as the session has ended. Past the size cap a marker ("m")
// says the rest was cut.
import { closeSync, fchmodSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

export interface RecordingPolicy {
  readonly dir: string;
  readonly input: boolean;
  readonly maxBytes: number;
}

export interface RecordingHeader {
  readonly width: number;
  readonly height: number;
  readonly term: string;
  readonly shell: string | undefined;
  readonly command: string | undefined;
  readonly title: string;
}

export interface Recording {
  readonly path: string;
  output(data: Buffer): void;
  input(data: Buffer): void;
  resize(cols: number, rows: number): void;
  /** Ends the file; returns its size and whether the cap cut it. */
  close(): { bytes: number; truncated: boolean };
}

/** `20261122T020304Z`: sorts by time, and safe in any file name. */
function stamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

export function startRecording(
  policy: RecordingPolicy,
  name: string,
  header: RecordingHeader,
  now: () => number = Date.now,
): Recording {
  mkdirSync(policy.dir, { recursive: true, mode: 0o700 });
  const started = now();
  const path = join(policy.dir, `${stamp(new Date(started))}-${name}.cast`);
  const fd = openSync(path, 'wx', 0o600);
  fchmodSync(fd, 0o600); // the umask may have narrowed it; never wider
  let bytes = 0;
  let truncated = false;
  let open = true;
  const put = (line: string) => {
    const size = Buffer.byteLength(line);
    writeSync(fd, line);
    bytes += size;
  };
  const event = (code: 'o' | 'i' | 'r', data: string) => {
    if (!open || truncated || data === '') return;
    const line = `${JSON.stringify([Number(((now() - started) / 1000).toFixed(6)), code, data])}\n`;
    if (bytes + Buffer.byteLength(line) > policy.maxBytes) {
      truncated = true;
      put(
        `${JSON.stringify([(now() - started) / 1000, 'm', `krun: recording truncated at ${policy.maxBytes} bytes`])}\n`,
      );
      return;
    }
    put(line);
  };
  put(
    `${JSON.stringify({
      version: 2,
      width: header.width,
      height: header.height,
      timestamp: Math.floor(started / 1000),
      ...(header.command === undefined ? {} : { command: header.command }),
      title: header.title,
      env: { TERM: header.term, ...(header.shell ? { SHELL: header.shell } : {}) },
    })}\n`,
  );
  // Multi-byte characters may straddle chunks: decode each direction as one stream.
  const out = new StringDecoder('utf8');
  const typed = new StringDecoder('utf8');
  return {
    path,
    output: (data) => event('o', out.write(data)),
    input: (data) => {
      if (policy.input) event('i', typed.write(data));
    },
    resize: (cols, rows) => event('r', `${cols}x${rows}`),
    close() {
      if (open) {
        event('o', out.end());
        open = false;
        closeSync(fd);
      }
      return { bytes, truncated };
    },
  };
}
