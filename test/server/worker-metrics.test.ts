import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GATHER_TIMEOUT_MS, MAX_GATHERS, mergeExpositions, MetricsGatherer, type MetricsMessage } from '../../server/src/worker-metrics';

const W1 = `# HELP im_conn Open connections.
# TYPE im_conn gauge
im_conn{transport="ws"} 3
im_conn{transport="tcp"} 1

# HELP im_lat Latency.
# TYPE im_lat histogram
im_lat_bucket{le="0.1"} 2
im_lat_bucket{le="+Inf"} 2
im_lat_sum 0.05
im_lat_count 2

# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds 20
`;
const W2 = W1.replace(/ 3$/m, ' 5').replace('process_open_fds 20', 'process_open_fds 22');

describe('mergeExpositions', () => {
  it('writes each family once with every part\'s samples labelled by node', () => {
    expect(mergeExpositions([{ node: 'n-w1', text: W1 }, { node: 'n-w2', text: W2 }])).toBe(`# HELP im_conn Open connections.
# TYPE im_conn gauge
im_conn{node="n-w1",transport="ws"} 3
im_conn{node="n-w1",transport="tcp"} 1
im_conn{node="n-w2",transport="ws"} 5
im_conn{node="n-w2",transport="tcp"} 1

# HELP im_lat Latency.
# TYPE im_lat histogram
im_lat_bucket{node="n-w1",le="0.1"} 2
im_lat_bucket{node="n-w1",le="+Inf"} 2
im_lat_sum{node="n-w1"} 0.05
im_lat_count{node="n-w1"} 2
im_lat_bucket{node="n-w2",le="0.1"} 2
im_lat_bucket{node="n-w2",le="+Inf"} 2
im_lat_sum{node="n-w2"} 0.05
im_lat_count{node="n-w2"} 2

# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds{node="n-w1"} 20
process_open_fds{node="n-w2"} 22
`);
  });

  it('keeps a node label a sample has already (a cluster node labels its own registry)', () => {
    const text = '# HELP x X.\n# TYPE x gauge\nx{node="n-w2"} 1\nx{transport="ws",node="n-w2"} 2\nx{nodes="3"} 4\n';
    expect(mergeExpositions([{ node: 'n-w2', text }])).toBe('# HELP x X.\n# TYPE x gauge\nx{node="n-w2"} 1\nx{transport="ws",node="n-w2"} 2\nx{node="n-w2",nodes="3"} 4\n');
  });

  it('escapes a node id\'s quotes and backslashes in the label value', () => {
    expect(mergeExpositions([{ node: 'a"b\\c', text: '# HELP x X.\n# TYPE x gauge\nx 1\n' }])).toContain('x{node="a\\"b\\\\c"} 1');
  });
});

describe('MetricsGatherer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    expect(vi.getTimerCount()).toBe(0);
    vi.useRealTimers();
  });

  class Target {
    readonly got: MetricsMessage[] = [];
    send(m: MetricsMessage): void {
      this.got.push(m);
    }
  }

  function setup(n: number) {
    const targets = Array.from({ length: n }, () => new Target());
    const clock = { now: () => Date.now(), setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };
    return { targets, gatherer: new MetricsGatherer({ targets: () => targets, clock }) };
  }

  it('asks every worker and answers the requester once every part arrived', () => {
    const { targets, gatherer } = setup(2);
    expect(gatherer.handle(targets[1], { im: 'metrics-request', id: 7 })).toBe(true);
    const collect = targets[0].got[0] as { im: 'metrics-collect'; id: number };
    expect(collect.im).toBe('metrics-collect');
    expect(targets[1].got).toEqual([collect]);
    gatherer.handle(targets[1], { im: 'metrics-part', id: collect.id, node: 'n-w2', text: W2 });
    expect(targets[1].got).toHaveLength(1);
    gatherer.handle(targets[0], { im: 'metrics-part', id: collect.id, node: 'n-w1', text: W1 });
    expect(targets[1].got[1]).toEqual({ im: 'metrics-result', id: 7, text: mergeExpositions([{ node: 'n-w1', text: W1 }, { node: 'n-w2', text: W2 }]) });
  });

  it('answers with the parts it has once the time is over, not one ms before', () => {
    const { targets, gatherer } = setup(2);
    gatherer.handle(targets[0], { im: 'metrics-request', id: 1 });
    const { id } = targets[0].got[0];
    gatherer.handle(targets[0], { im: 'metrics-part', id, node: 'n-w1', text: W1 });
    vi.advanceTimersByTime(GATHER_TIMEOUT_MS - 1);
    expect(targets[0].got).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(targets[0].got[1]).toEqual({ im: 'metrics-result', id: 1, text: mergeExpositions([{ node: 'n-w1', text: W1 }]) });
    // A late part finds no gather.
    gatherer.handle(targets[1], { im: 'metrics-part', id, node: 'n-w2', text: W2 });
    expect(targets[0].got).toHaveLength(2);
  });

  it(`runs at most ${MAX_GATHERS} gathers at once: the next request gets an empty answer (its worker answers alone)`, () => {
    const { targets, gatherer } = setup(1);
    for (let i = 0; i < MAX_GATHERS; i++) gatherer.handle(targets[0], { im: 'metrics-request', id: i });
    expect(targets[0].got).toHaveLength(MAX_GATHERS);
    gatherer.handle(targets[0], { im: 'metrics-request', id: 99 });
    expect(targets[0].got.at(-1)).toEqual({ im: 'metrics-result', id: 99, text: '' });
    gatherer.stop();
    expect(targets[0].got.filter((m) => m.im === 'metrics-result')).toHaveLength(MAX_GATHERS + 1);
  });

  it('ignores what is not a metrics message', () => {
    const { targets, gatherer } = setup(1);
    for (const m of [null, 'x', { im: 'ready', ports: {} }, { im: 'metrics-request' }, { im: 'metrics-part', id: 1, node: 3, text: '' }]) expect(gatherer.handle(targets[0], m)).toBe(false);
    expect(targets[0].got).toEqual([]);
  });
});
