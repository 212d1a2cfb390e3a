// The published package, as a user installs it: `npm pack` output loaded with require, import, a
// <script> tag (jsdom, talking to a real WebSocket server) and the TypeScript compiler.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runInNewContext } from 'node:vm';
import { JSDOM } from 'jsdom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { UMD_BUDGET_BYTES, measure } from '../../bench/size.mjs';

const root = resolve(__dirname, '../..');
let dir = '';
let pkgDir = '';
const node = (code: string, type: 'commonjs' | 'module') =>
  execFileSync(process.execPath, ['--input-type=' + type, '-e', code], { cwd: dir, encoding: 'utf8' }).trim();

beforeAll(() => {
  if (!existsSync(join(root, 'dist/umd/mobileimsdk.min.js'))) execFileSync('npx', ['rollup', '-c', '--silent'], { cwd: root });
  dir = mkdtempSync(join(tmpdir(), 'mobileimsdk-pack-'));
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: root, encoding: 'utf8' });
  const [{ filename }] = JSON.parse(out.slice(out.indexOf('[')));
  mkdirSync(join(dir, 'node_modules'));
  execFileSync('tar', ['-xzf', join(dir, filename), '-C', join(dir, 'node_modules')]);
  pkgDir = join(dir, 'node_modules/mobileimsdk-ts');
  renameSync(join(dir, 'node_modules/package'), pkgDir);
}, 60_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm pack output', () => {
  it('has no runtime dependencies and ships only dist/ and the README', () => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.sideEffects).toBe(false);
    expect(existsSync(join(pkgDir, 'src'))).toBe(false);
    const files = ['dist/esm/src/index.d.ts', 'dist/cjs/src/index.d.cts', 'dist/umd/mobileimsdk.d.ts', 'dist/umd/mobileimsdk.min.js'];
    files.push('dist/esm/src/tab-shared.d.ts', 'dist/cjs/src/tab-shared.d.cts', 'dist/umd/mobileimsdk-tab-shared.min.js', 'dist/umd/mobileimsdk-tab-shared.d.ts');
    for (const f of files) {
      expect(existsSync(join(pkgDir, f)), f).toBe(true);
    }
    expect(readFileSync(join(pkgDir, 'dist/cjs/src/index.d.cts'), 'utf8')).toMatch(/from '\.\/client\.cjs'/);
  });

  it('loads with require()', () => {
    const out = node(
      "const m = require('mobileimsdk-ts'); const b = require('mobileimsdk-ts/adapters/browser');" +
        "console.log(typeof m.IMClient, typeof b.createBrowserAdapter, m.SenseMode.MODE_5S, typeof m.IMError)",
      'commonjs',
    );
    expect(out).toBe('function function 2 function');
  });

  it('exports the tab-shared client as its own entry, sharing the core\'s classes (require and import)', () => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining(['./tab-shared', './umd/tab-shared']));
    // Node has no Web Locks: the fallback is a plain IMClient, the core's own class.
    const probe = (load: string) =>
      `${load} const c = t.createTabSharedClient({ url: 'ws://x/websocket', adapter: { name: 'n', connect() { throw new Error('no'); } } });` +
      'console.log(typeof t.createTabSharedClient, typeof t.TabSharedClient, c instanceof m.IMClient)';
    expect(node(probe("const m = require('mobileimsdk-ts'); const t = require('mobileimsdk-ts/tab-shared');"), 'commonjs')).toBe('function function true');
    expect(node(probe("import * as m from 'mobileimsdk-ts'; import * as t from 'mobileimsdk-ts/tab-shared';"), 'module')).toBe('function function true');
    expect(readFileSync(join(pkgDir, 'dist/cjs/src/tab-shared.d.cts'), 'utf8')).toMatch(/\.cjs'/);
  });

  it('loads with import, and each subpath export resolves', () => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
    const subpaths = Object.keys(pkg.exports).filter((k) => k.startsWith('./adapters/'));
    expect(subpaths).toContain('./adapters/browser');
    const imports = subpaths.map((s, i) => `import * as a${i} from 'mobileimsdk-ts/${s.slice(2)}';`).join('');
    const out = node(
      `import { IMClient, SenseMode } from 'mobileimsdk-ts'; ${imports}` +
        `console.log(typeof IMClient, SenseMode.MODE_3S, [${subpaths.map((_, i) => `Object.keys(a${i}).length > 0`).join(',')}].every(Boolean))`,
      'module',
    );
    expect(out).toBe('function 1 true');
  });

  it('type-checks for ESM and CJS consumers through the exports map', () => {
    const src = "import { IMClient, SenseMode, type IncomingMessage } from 'mobileimsdk-ts';\n" +
      "import { createBrowserAdapter } from 'mobileimsdk-ts/adapters/browser';\n" +
      "import { createTabSharedClient, type TabSharedOptions } from 'mobileimsdk-ts/tab-shared';\n" +
      "const shared = createTabSharedClient({ url: 'ws://x/websocket', adapter: createBrowserAdapter(), locks: null } satisfies TabSharedOptions);\n" +
      "shared.on('message', (m: IncomingMessage) => m.content.length);\n" +
      "const c = new IMClient({ url: 'ws://x/websocket', adapter: createBrowserAdapter(), senseMode: SenseMode.MODE_5S });\n" +
      "c.on('message', (m: IncomingMessage) => m.content.length);\n" +
      'export const p: Promise<{ rttMs: number }> = c.echo();\n';
    writeFileSync(join(dir, 'esm.mts'), src);
    writeFileSync(join(dir, 'cjs.cts'), src);
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const args = ['--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--lib', 'es2017'];
    expect(() => execFileSync(process.execPath, [tsc, ...args, 'esm.mts', 'cjs.cts'], { cwd: dir, encoding: 'utf8' })).not.toThrow();
  }, 60_000);

  it('keeps the minified UMD bundle within its gzip budget; the tab-shared add-on does not carry the core again', () => {
    const rows = measure(join(pkgDir, 'dist'));
    const umd = rows.find((r) => r.file === 'umd/mobileimsdk.min.js');
    expect(umd!.gzip).toBeLessThanOrEqual(UMD_BUDGET_BYTES);
    const shared = readFileSync(join(pkgDir, 'dist/umd/mobileimsdk-tab-shared.min.js'), 'utf8');
    expect(shared).toContain('MobileIMSDK');
    expect(shared).not.toContain('adapter.connect threw');
  });

  it('gives full programmer-error sentences in every build but the minified UMD, which names the bad option', () => {
    const umd = (file: string) => {
      const sandbox: { MobileIMSDK?: { IMClient: new (o: unknown) => unknown; createBrowserAdapter(): unknown } } = {};
      runInNewContext(readFileSync(join(pkgDir, 'dist/umd', file), 'utf8'), sandbox);
      const sdk = sandbox.MobileIMSDK!;
      try {
        new sdk.IMClient({ url: '', adapter: sdk.createBrowserAdapter() });
      } catch (error) {
        return `${(error as Error).name}: ${(error as Error).message}`;
      }
      return 'no error';
    };
    const esm = `const m = await import(${JSON.stringify(join(pkgDir, 'dist/esm/src/index.js'))});
      try { new m.IMClient({ url: '', adapter: { connect() {} } }); } catch (e) { console.log(e.name + ': ' + e.message); }`;
    const full = 'TypeError: options.url must be a server URL such as ws://127.0.0.1:3000/websocket, or a non-empty array of them';
    expect(node(esm, 'module')).toBe(full);
    expect(umd('mobileimsdk.js')).toBe(full);
    expect(umd('mobileimsdk.min.js')).toBe('TypeError: invalid options.url');
  });
});

describe('UMD bundle through a <script> tag', () => {
  it('exposes MobileIMSDK and logs in over a real WebSocket from the page', async () => {
    const wss = new WebSocketServer({ port: 0, path: '/websocket' });
    wss.on('connection', (ws) =>
      ws.on('message', (data) => {
        const f = JSON.parse(String(data));
        if (f.type === 0) {
          const uid = JSON.parse(f.dataContent).loginUserId;
          ws.send(JSON.stringify({ bridge: false, type: 50, dataContent: '{"code":0,"firstLoginTime":7}', from: '0', to: uid, QoS: false, typeu: -1, sm: -1 }));
        }
      }),
    );
    await new Promise((r) => wss.once('listening', r));
    const port = (wss.address() as { port: number }).port;
    const code = readFileSync(join(pkgDir, 'dist/umd/mobileimsdk.min.js'), 'utf8');
    const dom = new JSDOM(`<!doctype html><script>${code}</script>`, { runScripts: 'dangerously', url: 'http://localhost/' });
    try {
      const sdk = (dom.window as any).MobileIMSDK;
      expect(typeof sdk.IMClient).toBe('function');
      expect(typeof sdk.createBrowserAdapter).toBe('function');
      expect(sdk.SenseMode.MODE_120S).toBe(7);
      const result = await dom.window.eval(
        `new MobileIMSDK.IMClient({ url: 'ws://127.0.0.1:${port}/websocket', adapter: MobileIMSDK.createBrowserAdapter() })` +
          `.login({ userId: 'page-user', token: 't' }).then((r) => JSON.stringify(r))`,
      );
      expect(JSON.parse(result)).toEqual({ userId: 'page-user', firstLoginTime: 7 });
    } finally {
      dom.window.close();
      wss.clients.forEach((c) => c.terminate());
      await new Promise((r) => wss.close(r));
    }
  });
});

describe('tab-shared UMD add-on through a <script> tag', () => {
  it('exposes MobileIMSDKTabShared on top of MobileIMSDK and falls back to the core IMClient without Web Locks (jsdom has none)', () => {
    const core = readFileSync(join(pkgDir, 'dist/umd/mobileimsdk.min.js'), 'utf8');
    const shared = readFileSync(join(pkgDir, 'dist/umd/mobileimsdk-tab-shared.min.js'), 'utf8');
    const dom = new JSDOM(`<!doctype html><script>${core}</script><script>${shared}</script>`, { runScripts: 'dangerously', url: 'http://localhost/' });
    try {
      const out = dom.window.eval(
        "const c = MobileIMSDKTabShared.createTabSharedClient({ url: 'ws://127.0.0.1:1/websocket', adapter: MobileIMSDK.createBrowserAdapter() });" +
          '[typeof MobileIMSDKTabShared.TabSharedClient, c instanceof MobileIMSDK.IMClient].join()',
      );
      expect(out).toBe('function,true');
    } finally {
      dom.window.close();
    }
  });
});
