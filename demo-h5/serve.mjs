#!/usr/bin/env node
// `npm start`: runs the reference server (server/dist/cli.js) as a child process and serves the H5 demo and
// the SDK bundles over HTTP. Flags: --port <n> (DEMO_PORT, default 8000) and --demo-host <addr> (DEMO_HOST,
// default 127.0.0.1) for the demo's HTTP server; every other flag goes to the server CLI (see its --help).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStaticServer } from './static.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..');
const cli = join(repoRoot, 'server', 'dist', 'cli.js');

/** Splits argv into the demo's own options and the flags passed through to the server CLI. */
function parseArgs(argv, env) {
  let port = env.DEMO_PORT ?? '8000';
  let host = env.DEMO_HOST || '127.0.0.1';
  const forwarded = [];
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].split(/=(.*)/s, 2);
    if (name === '--port' || name === '--demo-host') {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new Error(`${name} needs a value`);
      if (name === '--port') port = value;
      else host = value;
    } else {
      forwarded.push(argv[i]);
    }
  }
  const n = Number(port);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port must be an integer 0..65535, got "${port}"`);
  return { port: n, host, forwarded, help: forwarded.includes('--help') || forwarded.includes('-h') };
}

/** Starts the server CLI and resolves with its ports once it printed where it listens. */
function startImServer(args, env) {
  const proc = spawn(process.execPath, [cli, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  return new Promise((ok, fail) => {
    const onData = (chunk) => {
      process.stdout.write(chunk);
      out += chunk.toString();
      const ws = /websocket\s+ws:\/\/\S+?:(\d+)(\/\S*)/.exec(out);
      const http = /admin api\s+http:\/\/\S+?:(\d+)/.exec(out);
      if (/offline store:/.test(out)) {
        proc.stdout.off('data', onData);
        proc.stdout.pipe(process.stdout);
        proc.off('exit', onEarlyExit);
        ok({ proc, ws: ws && { port: Number(ws[1]), path: ws[2] }, adminPort: http ? Number(http[1]) : null });
      }
    };
    const onEarlyExit = (code) => fail(new Error(`the server exited with code ${code} before it was ready`));
    proc.stdout.on('data', onData);
    proc.once('exit', onEarlyExit);
  });
}

/**
 * The admin token of the demo, kept in the data directory so that the printed `curl` keeps working across
 * restarts of the server and of `npm start` itself.
 */
function demoAdminToken(dataDir) {
  const file = join(dataDir, 'admin-token');
  try {
    const kept = readFileSync(file, 'utf8').trim();
    if (kept) return kept;
  } catch {
    /* first start */
  }
  const token = randomBytes(18).toString('base64url');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, token + '\n', { mode: 0o600 });
  return token;
}

/** How long to wait before starting a stopped server again: 3 s, doubling while it keeps failing fast. */
const RESTART_DELAY_MS = Number(process.env.DEMO_RESTART_DELAY_MS ?? 3000);
const RESTART_MAX_DELAY_MS = 30000;

function stopChild(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((ok) => {
    const force = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', () => {
      clearTimeout(force);
      ok();
    });
    proc.kill('SIGTERM');
  });
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    console.error(`error: ${err.message}`);
    process.exit(2);
  }
  if (!existsSync(cli)) {
    console.error('error: server/dist/cli.js is missing; run `npm run build` first (`npm start` does).');
    process.exit(1);
  }
  if (opts.help) {
    console.log('npm start [-- flags]: the reference server plus the H5 demo over HTTP.\n');
    console.log('  --port <n>            DEMO_PORT   HTTP port of the demo page (default 8000)');
    console.log('  --demo-host <addr>    DEMO_HOST   address the demo page binds (default 127.0.0.1)\n');
    console.log('Every other flag is passed to the server:\n');
    spawn(process.execPath, [cli, '--help'], { stdio: 'inherit' }).once('exit', (code) => process.exit(code ?? 0));
    return;
  }

  const env = { ...process.env };
  const has = (flag) => opts.forwarded.some((a) => a === flag || a.startsWith(flag + '='));
  const valueOf = (flag) => {
    const i = opts.forwarded.findIndex((a) => a === flag || a.startsWith(flag + '='));
    if (i < 0) return undefined;
    const a = opts.forwarded[i];
    return a.includes('=') ? a.slice(a.indexOf('=') + 1) : opts.forwarded[i + 1];
  };
  const args = [...opts.forwarded];
  const dataDir = resolve(valueOf('--data-dir') ?? env.IM_DATA_DIR ?? join(here, '.data'));
  if (!has('--data-dir') && !env.IM_DATA_DIR) args.push('--data-dir', dataDir);
  if (!has('--admin-token') && !env.IM_ADMIN_TOKEN) env.IM_ADMIN_TOKEN = demoAdminToken(dataDir);
  // The demo logs users in by name with no token: say so explicitly, unless an authenticator is configured.
  const authGiven = opts.forwarded.some((a) => a.startsWith('--auth')) || Object.keys(env).some((k) => k.startsWith('IM_AUTH') && env[k]);
  if (!authGiven) args.push('--auth', 'none');
  const adminToken = has('--admin-token') ? null : env.IM_ADMIN_TOKEN;

  let im;
  try {
    im = await startImServer(args, env);
  } catch (err) {
    console.error(`error: ${err.message}`);
    process.exit(1);
  }
  if (!im.ws) {
    console.error('error: the demo needs the WebSocket gateway; do not pass --ws-port -1');
    await stopChild(im.proc);
    process.exit(2);
  }

  // Read at each request: a restarted server with port 0 may listen elsewhere.
  const config = () => JSON.stringify({ wsPort: im.ws.port, wsPath: im.ws.path, adminPort: im.adminPort });
  let web;
  try {
    web = await startStaticServer({
      root: repoRoot,
      port: opts.port,
      host: opts.host,
      prefixes: ['/demo-h5/', '/dist/umd/', '/dist/esm/'],
      redirects: { '/': '/demo-h5/' },
      routes: {
        // Browsers ask for /favicon.ico when a page declares no icon (ours declare an empty one).
        '/favicon.ico': (_req, res) => res.writeHead(204, { 'cache-control': 'max-age=86400' }).end(),
        '/demo-h5/config.json': (_req, res) =>
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(config()),
      },
    });
  } catch (err) {
    console.error(`error: the demo page cannot listen on ${opts.host}:${opts.port} (${err.code ?? err.message}); choose another with --port`);
    await stopChild(im.proc);
    process.exit(1);
  }

  let stopping = false;
  let restartTimer = null;
  let fastFailures = 0;
  const stop = async (code) => {
    if (stopping) return;
    stopping = true;
    clearTimeout(restartTimer);
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    process.stdin.pause();
    await Promise.all([web.close(), stopChild(im.proc)]);
    process.exit(code);
  };
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));

  // The IM server is supervised: when it stops or crashes, the demo page stays up and the server is
  // started again after a pause (at once on a key press), so a newcomer who stops it loses nothing.
  const restart = async () => {
    clearTimeout(restartTimer);
    restartTimer = null;
    if (stopping || (im.proc.exitCode === null && im.proc.signalCode === null)) return;
    console.log('starting the IM server again…');
    const startedMs = Date.now();
    try {
      const next = await startImServer(args, env);
      if (stopping) return void stopChild(next.proc);
      im = next;
      im.proc.once('exit', (code, signal) => onServerExit(code, signal, startedMs));
      console.log(`the IM server is back; the demo pages reconnect by themselves (${web.url}/demo-h5/)`);
    } catch (err) {
      console.error(`error: ${err.message}`);
      onServerExit(null, null, startedMs);
    }
  };
  const onServerExit = (code, signal, startedMs) => {
    if (stopping) return;
    // A server that keeps dying soon after it starts is failing (a port taken, a bad flag): back off.
    fastFailures = Date.now() - startedMs < 10000 ? fastFailures + 1 : 0;
    const delayMs = Math.min(RESTART_DELAY_MS * 2 ** Math.max(0, fastFailures - 1), RESTART_MAX_DELAY_MS);
    const why = signal ?? (code === null ? 'it did not start' : `exit code ${code}`);
    const keys = process.stdin.isTTY ? '; press r to start it now, q to quit' : '';
    console.error(`the IM server stopped (${why}); the demo page stays up. Starting the server again in ${(delayMs / 1000).toFixed(1)} s${keys}.`);
    restartTimer = setTimeout(restart, delayMs);
  };
  const firstStartMs = Date.now();
  im.proc.once('exit', (code, signal) => onServerExit(code, signal, firstStartMs));
  if (process.stdin.isTTY) {
    process.stdin.setRawMode(true);
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (key) => {
      if (key === 'r' || key === 'R') restart();
      else if (key === 'q' || key === 'Q' || key === '\u0003') stop(0);
    });
  }

  const page = `${web.url}/demo-h5/`;
  const lines = [
    '',
    'MobileIMSDK-TS demo is ready. Open these two in two browser tabs and chat:',
    `  ${page}?user=alice&to=bob`,
    `  ${page}?user=bob&to=alice`,
    `  (the same page on the ESM build: ${page}esm.html?user=alice&to=bob)`,
  ];
  if (im.adminPort && adminToken) {
    lines.push(
      'Push a message from the server (S2C) through the admin API:',
      `  curl -H 'Authorization: Bearer ${adminToken}' -H 'content-type: application/json' \\`,
      `       -d '{"to":"alice","content":"hello from the server"}' http://127.0.0.1:${im.adminPort}/api/send`,
    );
  }
  lines.push(process.stdin.isTTY ? 'Press Ctrl-C (or q) to stop.' : 'Press Ctrl-C to stop.', '');
  console.log(lines.join('\n'));
}

main().catch((err) => {
  console.error(`error: ${err.message}`);
  process.exit(1);
});
