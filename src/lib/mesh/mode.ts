// Which mesh data path `krun run` sets up, decided from the setting and what the machine offers. Pure: the caller
// probes the machine (binaries, iptables, uid) and logs the reason.
import type { MeshModeSetting } from '../run/config.ts';

/** sidecar: iptables capture to Envoy; whitebox: Envoy without capture (HTTP_PROXY); proxyless: pilot-agent only. */
export type MeshMode = 'sidecar' | 'whitebox' | 'proxyless' | 'none';

export interface ModeFacts {
  /** KRUN_MESH_MODE and where it came from. */
  readonly setting: MeshModeSetting;
  readonly settingSource: string;
  /** A cluster (kubeconfig, in-cluster or GKE) is configured: tokens and the istiod root can be had. */
  readonly cluster: boolean;
  readonly isRoot: boolean;
  readonly interceptionMode: 'REDIRECT' | 'NONE';
  readonly hasPilotAgent: boolean;
  readonly hasEnvoy: boolean;
  readonly hasIptables: boolean;
}

export interface ModeDecision {
  readonly mode: MeshMode;
  readonly reason: string;
}

export function decideMode(f: ModeFacts): ModeDecision {
  if (f.setting !== 'auto') return { mode: f.setting, reason: `asked for by ${f.settingSource}` };
  if (!f.cluster) return { mode: 'none', reason: 'no cluster configured' };
  if (!f.hasPilotAgent) return { mode: 'none', reason: 'no pilot-agent binary' };
  if (!f.hasEnvoy) return { mode: 'proxyless', reason: 'no Envoy binary' };
  if (f.interceptionMode === 'NONE') return { mode: 'whitebox', reason: 'ISTIO_META_INTERCEPTION_MODE is NONE' };
  if (!f.isRoot) return { mode: 'whitebox', reason: 'not running as root (iptables needs it)' };
  if (!f.hasIptables) return { mode: 'whitebox', reason: 'no iptables-restore binary' };
  return { mode: 'sidecar', reason: 'root, iptables, pilot-agent and Envoy are available' };
}

/** Traffic Director (MESH=td:…): Envoy with capture (the original's default), or the gRPC bootstrap for the app. */
export type TdFlavour = 'envoy' | 'proxyless';

export type TdFacts = Pick<
  ModeFacts,
  'setting' | 'settingSource' | 'isRoot' | 'interceptionMode' | 'hasEnvoy' | 'hasIptables'
>;

export function decideTdFlavour(f: TdFacts): { readonly flavour: TdFlavour; readonly reason: string } {
  if (f.setting === 'proxyless') return { flavour: 'proxyless', reason: `asked for by ${f.settingSource}` };
  if (f.setting === 'sidecar') return { flavour: 'envoy', reason: `asked for by ${f.settingSource}` };
  if (!f.hasEnvoy) return { flavour: 'proxyless', reason: 'no Envoy binary' };
  // Traffic Director's Envoy gets the app's traffic only through the capture.
  if (f.interceptionMode === 'NONE') return { flavour: 'proxyless', reason: 'ISTIO_META_INTERCEPTION_MODE is NONE' };
  if (!f.isRoot) return { flavour: 'proxyless', reason: 'not running as root (iptables needs it)' };
  if (!f.hasIptables) return { flavour: 'proxyless', reason: 'no iptables-restore binary' };
  return { flavour: 'envoy', reason: 'root, iptables and Envoy are available' };
}
