// ssh2's internal crypto module (not in @types/ssh2): whether its native binding loaded.
declare module 'ssh2/lib/protocol/crypto.js' {
  const crypto: { readonly bindingAvailable: boolean };
  export default crypto;
}
