import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterOptions, ServerOptions } from '../../server/src/index';
import { ensureServerBuilt } from '../server/child-server';

const nodeScript = join(dirname(fileURLToPath(import.meta.url)), 'cluster-node.mjs');

/** A cluster node running in a child process of the built server (test/fault/cluster-node.mjs). */
export interface ClusterNodeProcess {
  readonly nodeId: string;
  readonly pid: number;
  /** The node's WebSocket gateway, `ws://127.0.0.1:<port>/websocket`. */
  readonly wsUrl: string;
  /** The last 8 KB the process wrote (its warnings and errors), for a failure message. */
  output(): string;
  /** Its first 100 error lines (log level error or fatal). */
  errors(): string[];
  /** SIGKILL: the node dies without closing anything (its sockets are reset by the kernel). */
  kill(): Promise<void>;
}

/** Options of {@link startClusterNode}: the node's id and cluster options, plus any other server option. */
export interface ClusterNodeOptions extends Omit<ServerOptions, 'cluster' | 'logger' | 'hooks' | 'store' | 'auth'> {
  nodeId: string;
  cluster: ClusterOptions;
}

/** Processes started by {@link startClusterNode} and not yet known to be gone. */
const running = new Set<ChildProcess>();

/**
 * Starts a cluster node as a child process (building server/dist first when it is stale) and resolves
 * once its WebSocket gateway listens; rejects with its output when it exits first or takes over 15 s.
 */
export async function startClusterNode(options: ClusterNodeOptions): Promise<ClusterNodeProcess> {
  ensureServerBuilt();
  const proc = spawn(process.execPath, [nodeScript, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  let out = '';
  const keep = (chunk: Buffer) => void (out = (out + chunk.toString()).slice(-8192));
  const errors: string[] = [];
  let partial = '';
  proc.stderr?.on('data', (chunk: Buffer) => {
    keep(chunk);
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (/"level":[56]\d/.test(l) && errors.length < 100) errors.push(l);
  });
  const ws = await new Promise<number>((resolve, reject) => {
    let line = '';
    const timer = setTimeout(() => fail(new Error(`node ${options.nodeId} did not start within 15 s:\n${out}`)), 15_000);
    const onExit = (code: number | null, signal: string | null) => fail(new Error(`node ${options.nodeId} exited (${code ?? signal}) before listening:\n${out}`));
    const fail = (err: Error) => {
      clearTimeout(timer);
      proc.off('exit', onExit);
      proc.kill('SIGKILL');
      reject(err);
    };
    proc.once('exit', onExit);
    proc.stdout?.on('data', (chunk: Buffer) => {
      keep(chunk);
      if (line.includes('\n')) return;
      line += chunk.toString();
      const m = /^\{"ws":(\d+)\}\n/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      proc.off('exit', onExit);
      resolve(Number(m[1]));
    });
  });
  return {
    nodeId: options.nodeId,
    pid: proc.pid as number,
    wsUrl: `ws://127.0.0.1:${ws}/websocket`,
    output: () => out,
    errors: () => errors,
    kill: () => killChild(proc),
  };
}

/** SIGKILLs every node process started here that is still running (for afterEach). */
export async function killAllClusterNodes(): Promise<void> {
  await Promise.all([...running].map((p) => killChild(p)));
}

/** Sends SIGKILL to `proc` (by its pid) and waits until it has exited. */
function killChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}
