// The SSH transport algorithms krun offers, as server (the debug server) and as client (`krun ssh`, `krun cp`).
// ssh2's native crypto binding is not built under Node 24 (its install script does not run): chacha20-poly1305,
// OpenSSH's first choice, would then run in JavaScript, and AES-CTR pays an HMAC object per packet. The client's
// order decides the cipher and OpenSSH's lists CTR before GCM, so without the binding krun offers AES-GCM only
// (Node's crypto, AES-NI; bench:ssh measured scp ~1.5x faster than with chacha20-poly1305 or aes128-ctr). No CBC
// modes, no SHA-1 MACs; key exchange and host key types are ssh2's defaults (curve25519 and ECDH first, no SHA-1).
import type { CipherAlgorithm, MacAlgorithm } from 'ssh2';
import sshCrypto from 'ssh2/lib/protocol/crypto.js';

const GCM: CipherAlgorithm[] = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];
const NATIVE: CipherAlgorithm[] = ['chacha20-poly1305@openssh.com', ...GCM, 'aes128-ctr', 'aes256-ctr'];
const MACS: MacAlgorithm[] = [
  'hmac-sha2-256-etm@openssh.com',
  'hmac-sha2-512-etm@openssh.com',
  'hmac-sha2-256',
  'hmac-sha2-512',
];

/** krun's ciphers and MACs: with ssh2's native binding OpenSSH's usual set, without it AES-GCM only. */
export function transportAlgorithms(native = sshCrypto.bindingAvailable): {
  cipher: CipherAlgorithm[];
  hmac: MacAlgorithm[];
} {
  return { cipher: native ? [...NATIVE] : [...GCM], hmac: [...MACS] };
}
