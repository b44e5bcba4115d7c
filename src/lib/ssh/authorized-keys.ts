// authorized_keys lines (sshd(8) "AUTHORIZED_KEYS FILE FORMAT") as far as krun honours them: plain keys, and
// `cert-authority` lines trusting a CA for OpenSSH user certificates, optionally narrowed by `principals="…"`.
// Options krun can't enforce make the line invalid rather than silently ignored.
import { fingerprint, KEY_TYPES, KeyError, type PublicKey, parsePublicKey } from './keys.ts';

export interface AuthorizedEntry {
  /** `key`: this key may log in. `ca`: certificates signed by this key may. */
  readonly kind: 'key' | 'ca';
  readonly key: PublicKey;
  readonly fingerprint: string;
  readonly comment: string;
  /** Where the line came from (`env SSH_AUTH`, a file, `secret sshdebug/authorized_key_x`). */
  readonly source: string;
  /** For CA lines: certificate principals accepted instead of the login name. */
  readonly principals?: readonly string[];
  readonly permitPty: boolean;
  readonly permitPortForwarding: boolean;
}

export interface ParseResult {
  readonly entries: AuthorizedEntry[];
  /** One message per refused line, with its line number; never the key itself. */
  readonly errors: string[];
}

const FLAGS = new Set(['cert-authority', 'no-pty', 'no-port-forwarding', 'no-agent-forwarding', 'no-x11-forwarding']);
const IGNORED = new Set(['no-user-rc', 'no-agent-forwarding', 'no-x11-forwarding']);

/** Splits `opt1,opt2="a,b" type base64 comment` into options and the rest, honouring double quotes. */
function splitOptions(line: string): { options: string[]; rest: string } {
  const options: string[] = [];
  let current = '';
  let quoted = false;
  let i = 0;
  for (; i < line.length; i++) {
    const c = line[i] as string;
    if (c === '"') quoted = !quoted;
    else if (c === '\\' && quoted && line[i + 1] === '"') {
      current += '"';
      i++;
      continue;
    }
    if (!quoted && (c === ' ' || c === '\t')) break;
    if (!quoted && c === ',') {
      options.push(current);
      current = '';
      continue;
    }
    current += c;
  }
  if (quoted) throw new KeyError('unterminated quote in options');
  options.push(current);
  return { options, rest: line.slice(i).trim() };
}

export function parseAuthorizedLine(line: string, source: string): AuthorizedEntry | undefined {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  const first = text.split(/\s+/, 1)[0] as string;
  const { options, rest } = KEY_TYPES.has(first) ? { options: [], rest: text } : splitOptions(text);
  const [type, base64, ...comment] = rest.split(/\s+/);
  if (!type || !base64) throw new KeyError('expected "[options] type base64 [comment]"');
  if (!KEY_TYPES.has(type)) throw new KeyError(`unsupported key type ${type}`);
  const key = parsePublicKey(Buffer.from(base64, 'base64'));
  if (key.type !== type) throw new KeyError(`key type ${type} doesn't match the key (${key.type})`);
  let kind: 'key' | 'ca' = 'key';
  let principals: string[] | undefined;
  let permitPty = true;
  let permitPortForwarding = true;
  for (const option of options) {
    const eq = option.indexOf('=');
    const name = (eq < 0 ? option : option.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? undefined : option.slice(eq + 1).replace(/^"|"$/g, '');
    if (name === 'cert-authority' && value === undefined) kind = 'ca';
    else if (name === 'principals' && value !== undefined) principals = value.split(',').filter(Boolean);
    else if (name === 'no-pty' && value === undefined) permitPty = false;
    else if (name === 'no-port-forwarding' && value === undefined) permitPortForwarding = false;
    else if (name === 'restrict' && value === undefined) {
      permitPty = false;
      permitPortForwarding = false;
    } else if ((FLAGS.has(name) || IGNORED.has(name)) && value === undefined) {
      // Agent and X11 forwarding don't exist here; user rc files are never run.
    } else throw new KeyError(`option "${name}" isn't supported by krun's SSH server`);
  }
  if (principals && kind !== 'ca') throw new KeyError('principals="…" is only allowed with cert-authority');
  return {
    kind,
    key,
    fingerprint: fingerprint(key.blob),
    comment: comment.join(' '),
    source,
    ...(principals ? { principals } : {}),
    permitPty,
    permitPortForwarding,
  };
}

/** Parses every line of an authorized_keys text; bad lines are reported, the others still count. */
export function parseAuthorizedKeys(text: string, source: string): ParseResult {
  const entries: AuthorizedEntry[] = [];
  const errors: string[] = [];
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    try {
      const entry = parseAuthorizedLine(line, source);
      if (entry) entries.push(entry);
    } catch (err) {
      errors.push(`${source} line ${i + 1}: ${(err as Error).message}`);
    }
  }
  return { entries, errors };
}
