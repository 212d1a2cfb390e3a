// Shared helpers of the benchmarks: flags, child processes with a request/reply channel, percentiles,
// tables, the machine description and the JSON report.
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Parses `--name value`, `--name=value`, `--flag` and `--no-flag` over `defaults`, keeping each default's type. */
export function parseFlags(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
    const key = name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const negated = key.startsWith('no') && typeof defaults[key[2]?.toLowerCase() + key.slice(3)] === 'boolean';
    if (negated && inline === undefined) {
      out[key[2].toLowerCase() + key.slice(3)] = false;
      continue;
    }
    if (!(key in defaults)) throw new Error(`unknown flag --${name}; known: ${Object.keys(defaults).map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(' ')}`);
    const d = defaults[key];
    if (typeof d === 'boolean' && inline === undefined) {
      out[key] = true;
      continue;
    }
    const v = inline ?? argv[++i];
    if (v === undefined) throw new Error(`--${name} needs a value`);
    if (typeof d === 'number') out[key] = Number(v);
    else if (Array.isArray(d)) out[key] = v.split(',').map(Number);
    else if (typeof d === 'boolean') out[key] = v !== 'false';
    else out[key] = v;
  }
  return out;
}

/** Fails early, with the command to run, when the SDK or server build is missing. */
export function requireBuild() {
  const need = [join(ROOT, 'dist/esm/src/index.js'), join(ROOT, 'dist/esm/adapters/browser.js'), join(ROOT, 'server/dist/index.js')];
  const missing = need.filter((f) => !existsSync(f));
  if (missing.length > 0) {
    console.error(`no build found (${missing.map((f) => f.slice(ROOT.length + 1)).join(', ')}): run \`npm run build\` first`);
    process.exit(1);
  }
}

/**
 * Starts `script` as a child process with an IPC channel, optionally pinned to CPUs with taskset, and
 * returns a handle whose `request(message)` resolves with the child's reply carrying the same `id`.
 */
export function startChild(script, args = [], { cpus: cpuList = null, execArgv = [], env = {} } = {}) {
  const options = { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv, env: { ...process.env, ...env } };
  if (cpuList !== null && existsSync('/usr/bin/taskset')) {
    options.execPath = '/usr/bin/taskset';
    options.execArgv = ['-c', String(cpuList), process.execPath, ...execArgv];
  }
  const proc = fork(script, args, options);
  let nextId = 1;
  const waiting = new Map();
  const listeners = [];
  proc.on('message', (m) => {
    if (m && m.id !== undefined && waiting.has(m.id)) {
      const w = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.error) w.reject(new Error(m.error));
      else w.resolve(m);
      return;
    }
    for (const l of listeners) l(m);
  });
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  exited.then(({ code, signal }) => {
    for (const w of waiting.values()) w.reject(new Error(`${script} exited (${code ?? signal}) before replying`));
    waiting.clear();
  });
  return {
    proc,
    exited,
    /** Sends a message and resolves with the reply. */
    request(message, timeoutMs = 600000) {
      const id = nextId++;
      return new Promise((resolvePromise, reject) => {
        const t = setTimeout(() => {
          waiting.delete(id);
          reject(new Error(`${script}: no reply to ${message.cmd} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.set(id, {
          resolve: (v) => (clearTimeout(t), resolvePromise(v)),
          reject: (e) => (clearTimeout(t), reject(e)),
        });
        proc.send({ ...message, id });
      });
    },
    /** Resolves with the first unsolicited message matching `pred`. */
    waitFor(pred, timeoutMs = 60000) {
      return new Promise((resolvePromise, reject) => {
        const t = setTimeout(() => reject(new Error(`${script}: timed out waiting for a message`)), timeoutMs);
        const l = (m) => {
          if (!pred(m)) return;
          clearTimeout(t);
          listeners.splice(listeners.indexOf(l), 1);
          resolvePromise(m);
        };
        listeners.push(l);
      });
    },
    /** Asks the child to stop and waits; kills it after `graceMs`. */
    async stop(graceMs = 5000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      try {
        proc.send({ cmd: 'stop', id: 0 });
      } catch {
        /* channel already closed */
      }
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
    /** Kills the child at once (SIGKILL) and waits. */
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** In a child: answers requests with `handler(message)`'s result (or its error); exits when the parent is gone. */
export function serveRequests(handler) {
  process.once('disconnect', () => process.exit(0));
  process.on('message', async (m) => {
    try {
      const result = await handler(m);
      if (m.id) process.send({ id: m.id, ...(result ?? {}) });
    } catch (err) {
      if (m.id) process.send({ id: m.id, error: String(err && err.stack ? err.stack : err) });
    }
  });
}

/** The p-th percentile (0–100) of an ascending array; NaN when empty. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** p50, p90, p99 and max of a list of samples. */
export function summarize(samples) {
  const s = Float64Array.from(samples).sort();
  return { count: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s.length ? s[s.length - 1] : NaN };
}

/** Renders rows of objects as an aligned text table with the given columns. */
export function table(rows, columns) {
  const cell = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)) : String(v ?? ''));
  const body = rows.map((r) => columns.map((c) => cell(r[c.key])));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
  return [line(columns.map((c) => c.title)), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** The machine the figures come from. */
export function machine() {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1].trim();
  } catch {
    /* not Linux */
  }
  let wsVersion = 'unknown';
  try {
    wsVersion = JSON.parse(readFileSync(join(ROOT, 'node_modules/ws/package.json'), 'utf8')).version;
  } catch {
    /* ws not installed at the root */
  }
  return {
    cpus: cpus().length,
    cpuModel: model,
    memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    ws: wsVersion,
    platform: `${process.platform} ${process.arch}`,
    loadAverage1m: +loadavg()[0].toFixed(2),
  };
}

/** Writes the JSON report to `path` (default bench/results/<name>.json) and returns the path. */
export function writeReport(name, report, path = '') {
  const file = path || join(ROOT, 'bench', 'results', `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ bench: name, date: new Date().toISOString(), machine: machine(), ...report }, null, 2) + '\n');
  return file;
}

/** Total CPU seconds (user + system) of a `process.cpuUsage()` difference. */
export function cpuSeconds(before, after) {
  return (after.user - before.user + after.system - before.system) / 1e6;
}

/** Resolves after `ms`. */
export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * This process's event-loop stalls and GC pauses since the last `reset()`: `read()` gives the stalls' p99
 * and longest, the pauses' sum and longest, and how many were full collections (all in ms but the count).
 */
export function pauseMonitor() {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const gc = { ms: 0, maxMs: 0, major: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gc.ms += e.duration;
      gc.maxMs = Math.max(gc.maxMs, e.duration);
      if (e.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
    }
  }).observe({ entryTypes: ['gc'] });
  return {
    reset() {
      loop.reset();
      gc.ms = gc.maxMs = gc.major = 0;
    },
    read: () => ({ p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6, gcMs: gc.ms, gcMaxMs: gc.maxMs, gcMajor: gc.major }),
  };
}
