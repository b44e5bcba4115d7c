// CA_POOL and KRUN_CA_KEY_TYPE, the settings of the CAS signer (see mesh/workload-cert.ts), and what they imply for
// the Google token chain.
import { UsageError } from '../errors.ts';
import { CA_POOL_PATTERN } from '../gcp/privateca.ts';
import { WORKLOAD_KEY_TYPES, type WorkloadKeyType } from '../mesh/csr.ts';
import type { Value } from './config.ts';

export interface CaSettings {
  /** CA_POOL: krun gets the workload certificate from this Certificate Authority Service pool. */
  readonly caPool: Value<string | undefined>;
  readonly caKeyType: Value<WorkloadKeyType>;
}

function bad(raw: Value<string>, what: string, hint: string): UsageError {
  return new UsageError(`${raw.source} is "${raw.value}": ${what}`, { hints: [hint] });
}

/** Validates the raw settings; `googleTokens` is KRUN_GOOGLE_TOKENS as given (the pool needs its federated token). */
export function resolveCaSettings(
  pool: Value<string> | undefined,
  keyType: Value<string> | undefined,
  googleTokens: Value<string> | undefined,
): CaSettings {
  if (pool && !CA_POOL_PATTERN.test(pool.value)) {
    throw bad(pool, 'not a CA pool name', 'CA_POOL=projects/P/locations/L/caPools/NAME');
  }
  // The pool reflects the caller's SPIFFE identity: it needs the federated token, not the original's P4SA one.
  if (pool && googleTokens?.value.trim().toLowerCase() === 'off') {
    throw new UsageError(`${pool.source} needs the federated token, but ${googleTokens.source} is off`, {
      hints: ['KRUN_GOOGLE_TOKENS=federated (the default with CA_POOL)', 'or unset CA_POOL'],
    });
  }
  const type = keyType?.value.trim().toLowerCase();
  if (keyType && !WORKLOAD_KEY_TYPES.includes(type as WorkloadKeyType)) {
    throw bad(keyType, `not one of ${WORKLOAD_KEY_TYPES.join(', ')}`, 'KRUN_CA_KEY_TYPE=ec');
  }
  return {
    caPool: pool ?? { value: undefined, source: 'unset' },
    caKeyType: keyType
      ? { value: type as WorkloadKeyType, source: keyType.source }
      : { value: 'ec', source: 'default' },
  };
}
