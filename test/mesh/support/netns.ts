// A network namespace for a test, with only a loopback interface (so nothing sent in it can leave), extra local
// addresses on it, and helpers to run, serve and dial inside it. `ip netns exec` also bind-mounts
// /etc/netns/<name>/resolv.conf over /etc/resolv.conf, which is how a test gives the namespace its own nameserver.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** setpriv credentials: a process of UID 1337 (but another group). */
export const AS_PROXY_USER = ['--reuid=1337', '--regid=1000'];
/** setpriv credentials: root with group 1337 (istio-iptables -g: GID 1337 is not captured either). */
export const AS_PROXY_GROUP = ['--reuid=0', '--regid=1337'];

export class TestNetns {
  readonly name: string;
  private readonly children: ChildProcess[] = [];

  private constructor(name: string) {
    this.name = name;
  }

  static async create(name: string, addresses: readonly string[]): Promise<TestNetns> {
    await exec('ip', ['netns', 'add', name]);
    const ns = new TestNetns(name);
    await exec('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    for (const a of addresses) {
      await exec('ip', [
        '-n',
        name,
        'addr',
        'add',
        `${a}/${isIPv6(a) ? 128 : 32}`,
        'dev',
        'lo',
        ...(isIPv6(a) ? ['nodad'] : []),
      ]);
    }
    return ns;
  }

  /** Makes /etc/resolv.conf read `content` for what runs in the namespace. */
  async resolvConf(content: string): Promise<void> {
    await mkdir(`/etc/netns/${this.name}`, { recursive: true });
    await writeFile(`/etc/netns/${this.name}/resolv.conf`, content);
  }

  /** The namespace's interfaces. */
  async links(): Promise<string[]> {
    const { stdout } = await exec('ip', ['-n', this.name, '-o', 'link', 'show']);
    return stdout
      .trim()
      .split('\n')
      .map((l) => l.split(':')[1]?.trim() ?? '');
  }

  /** The command line that runs command in the namespace, under setpriv's credentials if given. */
  wrap(command: readonly string[], creds: readonly string[] = []): string[] {
    const inner = creds.length ? ['setpriv', ...creds, '--clear-groups', ...command] : [...command];
    return ['ip', 'netns', 'exec', this.name, ...inner];
  }

  exec(command: readonly string[], creds: readonly string[] = [], env: Record<string, string> = {}) {
    const [file, ...args] = this.wrap(command, creds);
    // HOME elsewhere: bash reads ~/.bashrc when its stdin is a socket, as Node's pipes are.
    return exec(file as string, args, {
      env: { PATH: process.env.PATH, HOME: '/nonexistent', ...env },
      timeout: 20_000,
    });
  }

  /** Starts a long-running command in the namespace; resolves once it prints its first line. Killed by destroy(). */
  async serve(command: readonly string[]): Promise<ChildProcess> {
    const [file, ...args] = this.wrap(command);
    const child = spawn(file as string, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    this.children.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout?.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`${command.join(' ')} exited with ${code}`)));
    });
    return child;
  }

  /** What a TCP connection to host:port reads (bash's /dev/tcp: no Node startup, runnable by any UID). */
  async dialTcp(host: string, port: number, creds: readonly string[] = []): Promise<string> {
    const script = `exec 3<>/dev/tcp/${host}/${port} && cat <&3`;
    return (await this.exec(['timeout', '5', 'bash', '-c', script], creds)).stdout.trim();
  }

  /** The answer to a UDP datagram to host:port (head reads it whole; bash's read would take one byte of it). */
  async dialUdp(host: string, port: number, creds: readonly string[] = []): Promise<string> {
    const script = `exec 3<>/dev/udp/${host}/${port} && printf query >&3 && head -n 1 <&3`;
    return (await this.exec(['timeout', '5', 'bash', '-c', script], creds)).stdout.trim();
  }

  async destroy(): Promise<void> {
    for (const child of this.children) child.kill();
    await exec('ip', ['netns', 'del', this.name]).catch(() => {});
    await rm(`/etc/netns/${this.name}`, { recursive: true, force: true });
  }
}
