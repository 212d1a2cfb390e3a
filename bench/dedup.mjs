// De-duplication window cost: nanoseconds per new fingerprint once a window of a given size is full,
// for the SDK's DedupWindow (src/dedup-window.ts, the client's; the server has its own, server/src/dedup.ts), side by side with a Map used as a FIFO
// (the previous design, which slows down as deleted entries pile up in V8's table) and a bare Set.add.
// Prints a table and writes bench/results/dedup.json. It never passes or fails.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { parseFlags, ROOT, table, writeReport } from './lib/common.mjs';

const flags = parseFlags(process.argv.slice(2), { keys: 80000, rounds: 3, out: '' });

const source = readFileSync(join(ROOT, 'src/dedup-window.ts'), 'utf8');
const js = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.ESNext } }).outputText;
const { DedupWindow } = await import('data:text/javascript;base64,' + Buffer.from(js).toString('base64'));

/** The previous design: a Map in insertion order, expired and evicted by walking from its front. */
class MapFifoWindow {
  constructor(ttlMs, max) {
    this.seen = new Map();
    this.ttlMs = ttlMs;
    this.max = max;
  }
  checkAndAdd(key, now) {
    for (const [k, at] of this.seen) {
      if (this.seen.size < this.max && now - at < this.ttlMs) break;
      this.seen.delete(k);
    }
    if (this.seen.has(key)) return true;
    this.seen.set(key, now);
    return false;
  }
}

const designs = {
  DedupWindow: (max) => new DedupWindow(600000, max),
  'Map as FIFO (previous)': (max) => new MapFifoWindow(600000, max),
  'Set.add (no bound, baseline)': () => ({ s: new Set(), checkAndAdd(k) { const had = this.s.has(k); this.s.add(k); return had; } }),
};

function nsPerNewKey(make, size) {
  const w = make(size);
  let k = 0;
  for (; k < size; k++) w.checkAndAdd(`user\nfp-${k}`, 0);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < flags.keys; i++) w.checkAndAdd(`user\nfp-${k++}`, 0);
  return Number(process.hrtime.bigint() - t0) / flags.keys;
}

const rows = [];
for (const size of [100, 10000, 100000]) {
  for (const [name, make] of Object.entries(designs)) {
    const runs = Array.from({ length: flags.rounds }, () => nsPerNewKey(make, size)).sort((a, b) => a - b);
    rows.push({ design: name, window: size, nsPerKey: runs[Math.floor(runs.length / 2)] });
  }
}
console.log(`ns per new fingerprint after the window is full (${flags.keys} keys, median of ${flags.rounds} rounds)\n`);
console.log(table(rows, [
  { key: 'design', title: 'design' },
  { key: 'window', title: 'window' },
  { key: 'nsPerKey', title: 'ns/key' },
]));
console.log(`\nreport: ${writeReport('dedup', { keys: flags.keys, rows }, flags.out)}`);
