// Just enough of a Dockerfile and .dockerignore parser to check the image recipes without a Docker engine: stages
// (FROM with ARG defaults substituted, AS names), COPY sources and destinations, ENTRYPOINT, and the
// `docker build -t TAG -f FILE .` lines their comments document.

export interface Copy {
  /** --from=STAGE, or undefined for the build context. */
  readonly from?: string | undefined;
  readonly sources: readonly string[];
  readonly dest: string;
}

export interface Stage {
  readonly image: string;
  readonly name?: string | undefined;
  readonly copies: Copy[];
  entrypoint?: readonly string[];
}

export interface Dockerfile {
  readonly stages: Stage[];
  /** TAG → Dockerfile path, from `docker build -t TAG -f FILE .` in comments. */
  readonly builds: Map<string, string>;
}

function words(text: string): string[] {
  return text.trim().split(/\s+/).filter(Boolean);
}

export function parseDockerfile(text: string): Dockerfile {
  const builds = new Map<string, string>();
  for (const m of text.matchAll(/docker build -t (\S+) -f (\S+) \.$/gm)) builds.set(m[1] ?? '', m[2] ?? '');
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const args = new Map<string, string>();
  const expand = (s: string) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args.get(a ?? b) ?? '');
  const stages: Stage[] = [];
  for (const line of lines) {
    const [instruction = '', ...rest] = words(line);
    const body = line.slice(instruction.length).trim();
    const stage = stages.at(-1);
    switch (instruction.toUpperCase()) {
      case 'ARG': {
        const eq = body.indexOf('=');
        const [name, value] = eq < 0 ? [body, ''] : [body.slice(0, eq), body.slice(eq + 1)];
        if (!args.has(name)) args.set(name, value);
        break;
      }
      case 'FROM': {
        const [image = '', as, name] = rest.filter((w) => !w.startsWith('--'));
        stages.push({ image: expand(image), name: as?.toUpperCase() === 'AS' ? name : undefined, copies: [] });
        break;
      }
      case 'COPY': {
        if (!stage) throw new Error(`COPY before FROM: ${line}`);
        const options = rest.filter((w) => w.startsWith('--'));
        const operands = body.startsWith('[')
          ? (JSON.parse(body.slice(body.indexOf('['))) as string[])
          : rest.filter((w) => !w.startsWith('--'));
        const from = options.find((o) => o.startsWith('--from='))?.slice('--from='.length);
        stage.copies.push({ from, sources: operands.slice(0, -1), dest: operands.at(-1) ?? '' });
        break;
      }
      case 'ENTRYPOINT': {
        if (!stage) throw new Error(`ENTRYPOINT before FROM: ${line}`);
        if (!body.startsWith('[')) throw new Error(`ENTRYPOINT in shell form (signals would go to /bin/sh): ${line}`);
        stage.entrypoint = JSON.parse(body) as string[];
        break;
      }
    }
  }
  return { stages, builds };
}

/** Whether .dockerignore `patterns` keep `path` (relative to the context) in the build context. */
export function inBuildContext(path: string, dockerignore: string): boolean {
  let kept = true;
  for (const raw of dockerignore.split('\n').map((l) => l.trim())) {
    if (raw === '' || raw.startsWith('#')) continue;
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).replace(/\/$/, '');
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
    if (re.test(path)) kept = negated;
  }
  return kept;
}
