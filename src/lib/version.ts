// What `krun version` reports: the CLI, the Node runtime under it, and the platform.
export interface VersionInfo {
  readonly krun: string;
  readonly node: string;
  readonly platform: string;
}

export function versionInfo(krun: string, proc: Pick<NodeJS.Process, 'version' | 'platform' | 'arch'>): VersionInfo {
  return { krun, node: proc.version, platform: `${proc.platform}/${proc.arch}` };
}

export function describeVersion(info: VersionInfo): string {
  return `krun ${info.krun} (node ${info.node}, ${info.platform})\n`;
}
