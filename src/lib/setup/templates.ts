// The YAML manifests in templates/ (shipped beside dist/), rendered by a pure function: `${NAME}` placeholders are
// replaced after parsing, so a value can't break the YAML. A string that is exactly one placeholder takes the value
// as it is (a number, a list); inside a longer string the value is text. An unknown placeholder is an error.
import { KrunError } from '../errors.ts';
import { readShipped } from '../fs/shipped.ts';
import type { KubeObject } from '../kube/client.ts';

export type TemplateValue = string | number | readonly string[];

const WHOLE = /^\$\{([A-Z_][A-Z0-9_]*)\}$/;
const PART = /\$\{([A-Z_][A-Z0-9_]*)\}/g;

function value(name: string, vars: Readonly<Record<string, TemplateValue>>, template: string): TemplateValue {
  const v = vars[name];
  if (v === undefined) throw new KrunError(`template ${template} uses \${${name}}, which krun doesn't set`);
  return v;
}

function fill(node: unknown, vars: Readonly<Record<string, TemplateValue>>, template: string): unknown {
  if (typeof node === 'string') {
    const whole = WHOLE.exec(node);
    if (whole?.[1]) {
      const v = value(whole[1], vars, template);
      return Array.isArray(v) ? [...v] : v;
    }
    return node.replace(PART, (_, name: string) => String(value(name, vars, template)));
  }
  if (Array.isArray(node)) return node.map((n) => fill(n, vars, template));
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, fill(v, vars, template)]));
  }
  return node;
}

/** The objects of a multi-document YAML template, placeholders filled. */
export async function renderTemplate(
  text: string,
  vars: Readonly<Record<string, TemplateValue>>,
  template = 'template',
): Promise<KubeObject[]> {
  const { parseAllDocuments } = await import('yaml');
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as unknown)
    .filter((o): o is object => o !== null && typeof o === 'object')
    .map((o) => fill(o, vars, template) as KubeObject);
}

export async function loadTemplate(name: string, vars: Readonly<Record<string, TemplateValue>>): Promise<KubeObject[]> {
  return renderTemplate(await readShipped(`templates/${name}`), vars, name);
}
