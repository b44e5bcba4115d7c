// The simulated node's container runtime: a "container" is a local Node process running a KRM function script from
// test/fixtures/fn. As with a real runtime, its output goes to the container log (stdout and stderr merged, in write
// order) and to whoever is attached at that moment; nothing is replayed to a later attach. Stdin is held open until
// the first attach ends it (stdinOnce). Mounts are directories on this machine, named in SIM_MOUNTS.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';

export const FUNCTIONS_DIR = new URL('../../fixtures/fn/', import.meta.url).pathname;

export type Sink = (channel: 1 | 2, data: Buffer) => void;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class SimContainer {
  readonly log: Buffer[] = [];
  readonly exited: Promise<Exit>;
  /** Resolves once the process has written anything. */
  readonly firstOutput: Promise<void>;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly sinks = new Set<Sink>();
  private done = false;

  constructor(script: string, args: readonly string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [`${FUNCTIONS_DIR}${script}.mjs`, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      cwd: FUNCTIONS_DIR,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let wrote = () => {};
    this.firstOutput = new Promise((resolve) => {
      wrote = resolve;
    });
    const emit = (channel: 1 | 2) => (data: Buffer) => {
      wrote();
      this.log.push(data);
      for (const sink of this.sinks) sink(channel, data);
    };
    this.child.stdout.on('data', emit(1));
    this.child.stderr.on('data', emit(2));
    this.child.stdin.on('error', () => {}); // a function that exits without reading all of stdin
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code, signal) => {
        this.done = true;
        resolve({ code, signal });
      }),
    );
  }

  get running(): boolean {
    return !this.done;
  }

  /** Streams output from now on; returns the detach function. */
  attach(sink: Sink): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  writeStdin(data: Buffer): void {
    if (!this.child.stdin.writableEnded) this.child.stdin.write(data);
  }

  endStdin(): void {
    if (!this.child.stdin.writableEnded) this.child.stdin.end();
  }

  kill(): void {
    if (!this.done) this.child.kill('SIGKILL');
  }
}

/** The containers of the simulated node, by `namespace/pod/container`. */
export class SimRuntime {
  readonly containers = new Map<string, SimContainer>();

  get(namespace: string, pod: string, container: string): SimContainer | undefined {
    return this.containers.get(`${namespace}/${pod}/${container}`);
  }

  ofPod(namespace: string, pod: string): SimContainer[] {
    return [...this.containers].filter(([k]) => k.startsWith(`${namespace}/${pod}/`)).map(([, c]) => c);
  }

  start(
    namespace: string,
    pod: string,
    name: string,
    script: string,
    args: readonly string[],
    env: Record<string, string>,
  ): SimContainer {
    const container = new SimContainer(script, args, env);
    this.containers.set(`${namespace}/${pod}/${name}`, container);
    return container;
  }

  stopAll(): void {
    for (const c of this.containers.values()) c.kill();
  }
}
