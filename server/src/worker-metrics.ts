import type { SupervisorClock } from './worker-supervisor';

/**
 * `/metrics` under `--workers`: a scrape reaches one worker through the shared port, so that worker asks
 * the primary, the primary asks every ready worker for its own text, and the answer is one exposition
 * with each worker's series labelled `node="<node-id>-w<i>"`:
 *
 *   worker k --metrics-request(id)--> primary --metrics-collect(id)--> every ready worker
 *   worker k <--metrics-result(id)--  primary <--metrics-part(id)----  each of them (or the time is over)
 */
export type MetricsMessage =
  | { im: 'metrics-request'; id: number }
  | { im: 'metrics-collect'; id: number }
  | { im: 'metrics-part'; id: number; node: string; text: string }
  | { im: 'metrics-result'; id: number; text: string };

/** How long the primary waits for the workers' parts; a worker that has not answered is left out. */
export const GATHER_TIMEOUT_MS = 1000;
/** Gathers the primary runs at once; a request beyond them is answered with an empty text at once. */
export const MAX_GATHERS = 8;
/** Largest part the primary keeps from one worker (bytes of text). */
export const MAX_PART_CHARS = 4 * 1024 * 1024;

/** The message as a {@link MetricsMessage}, or null. */
export function asMetricsMessage(m: unknown): MetricsMessage | null {
  if (typeof m !== 'object' || m === null) return null;
  const o = m as Record<string, unknown>;
  if (typeof o.id !== 'number') return null;
  switch (o.im) {
    case 'metrics-request':
    case 'metrics-collect':
      return o as MetricsMessage;
    case 'metrics-part':
      return typeof o.node === 'string' && typeof o.text === 'string' ? (o as MetricsMessage) : null;
    case 'metrics-result':
      return typeof o.text === 'string' ? (o as MetricsMessage) : null;
    default:
      return null;
  }
}

/**
 * Merges Prometheus text expositions (as prom-client writes them: each family's `# HELP`, `# TYPE`, then
 * its samples) into one: each family once, with every part's samples labelled `node="<node>"` (a sample
 * that has a `node` label already keeps it).
 */
export function mergeExpositions(parts: ReadonlyArray<{ node: string; text: string }>): string {
  const families = new Map<string, { help: string; type: string; samples: string[] }>();
  for (const { node, text } of parts) {
    const label = `node="${node.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
    let current: { help: string; type: string; samples: string[] } | null = null;
    for (const line of text.split('\n')) {
      const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (meta) {
        const [, kind, name, rest] = meta;
        current = families.get(name) ?? { help: '', type: '', samples: [] };
        families.set(name, current);
        if (kind === 'HELP') current.help = rest;
        else current.type = rest;
        continue;
      }
      if (line === '' || line.startsWith('#') || !current) continue;
      const brace = line.indexOf('{');
      const space = line.indexOf(' ');
      if (space < 0) continue;
      if (brace >= 0 && brace < space) {
        // A cluster node's registry labels its samples with `node` already: keep theirs.
        const labelled = /[{,]node="/.test(line.slice(brace, line.lastIndexOf('}') + 1));
        current.samples.push(labelled ? line : `${line.slice(0, brace + 1)}${label},${line.slice(brace + 1)}`);
      } else current.samples.push(`${line.slice(0, space)}{${label}}${line.slice(space)}`);
    }
  }
  const out: string[] = [];
  for (const [name, f] of families) out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`, ...f.samples, '');
  return out.join('\n');
}

/** A worker the primary can ask for its part. */
export interface MetricsTarget {
  send(message: MetricsMessage): void;
}

/** The primary's side: answers each worker's `metrics-request` with every ready worker's part merged. */
export class MetricsGatherer {
  private readonly gathers = new Map<number, { from: MetricsTarget; fromId: number; expected: number; parts: Array<{ node: string; text: string }>; timer: unknown }>();
  private nextId = 1;

  constructor(private readonly o: { targets(): MetricsTarget[]; clock: SupervisorClock; timeoutMs?: number }) {}

  /** Handles a metrics message from worker `from`; false when it was none. */
  handle(from: MetricsTarget, message: unknown): boolean {
    const m = asMetricsMessage(message);
    if (!m) return false;
    if (m.im === 'metrics-request') this.start(from, m.id);
    else if (m.im === 'metrics-part') this.part(m);
    return true;
  }

  /** Answers every gather still waiting with what it has (at shutdown). */
  stop(): void {
    for (const id of [...this.gathers.keys()]) this.finish(id);
  }

  private start(from: MetricsTarget, fromId: number): void {
    const targets = this.o.targets();
    if (this.gathers.size >= MAX_GATHERS || targets.length === 0) {
      from.send({ im: 'metrics-result', id: fromId, text: '' });
      return;
    }
    const id = this.nextId++;
    const timer = this.o.clock.setTimeout(() => this.finish(id), this.o.timeoutMs ?? GATHER_TIMEOUT_MS);
    this.gathers.set(id, { from, fromId, expected: targets.length, parts: [], timer });
    for (const t of targets) t.send({ im: 'metrics-collect', id });
  }

  private part(m: { id: number; node: string; text: string }): void {
    const g = this.gathers.get(m.id);
    if (!g || m.text.length > MAX_PART_CHARS || g.parts.some((p) => p.node === m.node)) return;
    g.parts.push({ node: m.node, text: m.text });
    if (g.parts.length >= g.expected) this.finish(m.id);
  }

  private finish(id: number): void {
    const g = this.gathers.get(id);
    if (!g) return;
    this.gathers.delete(id);
    this.o.clock.clearTimeout(g.timer);
    g.parts.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    g.from.send({ im: 'metrics-result', id: g.fromId, text: mergeExpositions(g.parts) });
  }
}
