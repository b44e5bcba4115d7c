/** The nat rules (iptables-save form) krun's capture holds for a nameserver and excluded ports, after 127.0.0.1. */
export function expectedRules(nameserver: string, excluded: readonly number[]): string[] {
  return [
    '-A OUTPUT -j ISTIO_OUTPUT',
    '-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN',
    '-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN',
    `-A ISTIO_OUTPUT -d ${nameserver}/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053`,
    `-A ISTIO_OUTPUT -d ${nameserver}/32 -p tcp -m tcp --dport 53 -j REDIRECT --to-ports 15053`,
    '-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN',
    ...excluded.map((p) => `-A ISTIO_OUTPUT -p tcp -m tcp --dport ${p} -j RETURN`),
    '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15008 -j RETURN',
    '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15009 -j RETURN',
    '-A ISTIO_OUTPUT -p tcp -m tcp --dport 15022 -j RETURN',
    '-A ISTIO_OUTPUT -p tcp -j ISTIO_REDIRECT',
    '-A ISTIO_OUTPUT -j RETURN',
    '-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
  ];
}

/** iptables-save -t nat output without its comment lines, for the rules above. */
export function savedNat(rules: readonly string[]): string[] {
  return [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':ISTIO_OUTPUT - [0:0]',
    ':ISTIO_REDIRECT - [0:0]',
    ...rules,
    'COMMIT',
  ];
}
