// `--ca-file`: the PEM bundle an HBONE client trusts for a workload serving TLS with its own CA.
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.ts';

/** The file's PEM text, undefined without a path; an unreadable file is a usage error naming the flag. */
export function readCaFile(path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`can't read --ca-file ${path}: ${(err as Error).message}`);
  }
}
