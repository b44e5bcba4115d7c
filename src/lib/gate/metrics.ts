// The gate's counters and gauges, served in Prometheus's text exposition format (version 0.0.4).

export type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly values: Map<string, number>;
  /** For gauges read at scrape time. */
  readonly read?: () => ReadonlyMap<string, number>;
}

function key(labels: Labels): string {
  const pairs = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return pairs.length > 0 ? `{${pairs.join(',')}}` : '';
}

export class Metrics {
  readonly #families = new Map<string, Family>();

  #family(name: string, help: string, type: Family['type']): Family {
    let f = this.#families.get(name);
    if (!f) {
      f = { help, type, values: new Map() };
      this.#families.set(name, f);
    }
    return f;
  }

  /** A counter: `inc(labels, by)`. */
  counter(name: string, help: string): (labels?: Labels, by?: number) => void {
    const f = this.#family(name, help, 'counter');
    return (labels = {}, by = 1) => {
      const k = key(labels);
      f.values.set(k, (f.values.get(k) ?? 0) + by);
    };
  }

  /** A gauge computed when scraped: `read()` gives each label set's value. */
  gauge(name: string, help: string, read: () => Iterable<readonly [Labels, number]>): void {
    this.#families.set(name, {
      help,
      type: 'gauge',
      values: new Map(),
      read: () => new Map([...read()].map(([labels, v]) => [key(labels), v])),
    });
  }

  /** The current value of a series, for tests and logs. */
  value(name: string, labels: Labels = {}): number {
    const f = this.#families.get(name);
    return (f?.read ? f.read() : f?.values)?.get(key(labels)) ?? 0;
  }

  text(): string {
    let out = '';
    for (const [name, f] of this.#families) {
      out += `# HELP ${name} ${f.help}\n# TYPE ${name} ${f.type}\n`;
      for (const [k, v] of f.read ? f.read() : f.values) out += `${name}${k} ${v}\n`;
    }
    return out;
  }
}
