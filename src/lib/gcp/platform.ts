// Whether krun runs on Google Cloud, decided from local evidence before anything is sent to the metadata address:
// off Google Cloud, krun must not probe 169.254.169.254 at all.
import { readFile } from 'node:fs/promises';

export interface Platform {
  readonly onGoogleCloud: boolean;
  readonly reason: string;
}

export const DMI_PRODUCT_NAME = '/sys/class/dmi/id/product_name';

export async function detectPlatform(
  env: Readonly<Record<string, string | undefined>>,
  readDmi: () => Promise<string> = () => readFile(DMI_PRODUCT_NAME, 'utf8'),
): Promise<Platform> {
  if (env.GCE_METADATA_HOST) return { onGoogleCloud: true, reason: `GCE_METADATA_HOST is ${env.GCE_METADATA_HOST}` };
  if (env.K_SERVICE || env.K_REVISION) return { onGoogleCloud: true, reason: 'Cloud Run (K_SERVICE/K_REVISION set)' };
  const product = await readDmi().then(
    (s) => s.trim(),
    () => '',
  );
  if (product.startsWith('Google')) return { onGoogleCloud: true, reason: `DMI product name "${product}"` };
  return { onGoogleCloud: false, reason: 'no Cloud Run variables, GCE_METADATA_HOST or Google DMI product name' };
}
