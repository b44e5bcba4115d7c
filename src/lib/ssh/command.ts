// What a session runs: the shell is bash when the image has it, else sh (the original's order made /bin/sh win
// over bash); an image without any shell still runs `exec` commands, split into words and started directly.
import { accessSync, constants } from 'node:fs';

const SHELLS = ['/bin/bash', '/usr/bin/bash', '/bin/sh', '/usr/bin/sh', '/busybox/sh'];

export function findShell(exists: (path: string) => boolean = executable): string | undefined {
  return SHELLS.find(exists);
}

export function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Splits a command line into words: whitespace separates, single and double quotes group, backslash escapes. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

export interface Argv {
  readonly file: string;
  readonly args: readonly string[];
}

/**
 * The program for a session: `<shell> -c <command>` for exec, an interactive shell for `shell`, or the command's
 * own words when there is no shell. Undefined when there is nothing to run (no shell and no command).
 */
export function sessionArgv(command: string | undefined, shell: string | undefined, login: boolean): Argv | undefined {
  if (shell) {
    if (command !== undefined) return { file: shell, args: ['-c', command] };
    return { file: shell, args: login ? ['-l'] : [] };
  }
  const words = splitWords(command ?? '');
  const [file, ...args] = words;
  return file ? { file, args } : undefined;
}
