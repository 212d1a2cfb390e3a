// Prints the raw, minified and gzipped size of every built bundle, and checks the UMD budget.
// Run after `npm run build`; writes the figures as JSON to bench/results/size.json, or to `--json FILE`.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';

/** The budget for the minified UMD bundle (core + browser adapter), gzipped. */
export const UMD_BUDGET_BYTES = 8 * 1024;

/** Sizes of every .js/.cjs file under dist/, with gzip level 9 as CDNs serve them. */
export function measure(root = 'dist') {
  const walk = (dir) =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : /\.(c?js)$/.test(e.name) ? [join(dir, e.name)] : [],
    );
  return walk(root)
    .sort()
    .map((file) => {
      const bytes = readFileSync(file);
      return { file: relative(root, file), bytes: statSync(file).size, gzip: gzipSync(bytes, { level: 9 }).length };
    });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (!existsSync('dist/umd/mobileimsdk.min.js')) {
    console.error('no build found: run `npm run build` first');
    process.exit(1);
  }
  const rows = measure();
  const pad = (s, n) => String(s).padStart(n);
  console.log(`${'bundle'.padEnd(44)}${pad('bytes', 9)}${pad('gzip', 8)}`);
  for (const r of rows) console.log(`${r.file.padEnd(44)}${pad(r.bytes, 9)}${pad(r.gzip, 8)}`);
  const umd = rows.find((r) => r.file === 'umd/mobileimsdk.min.js');
  const verdict = umd.gzip <= UMD_BUDGET_BYTES ? 'within' : 'OVER';
  console.log(`\nUMD core + browser adapter, minified and gzipped: ${umd.gzip} B of a ${UMD_BUDGET_BYTES} B budget (${verdict})`);
  const shared = rows.find((r) => r.file === 'umd/mobileimsdk-tab-shared.min.js');
  if (shared) console.log(`UMD tab-shared add-on (loaded after the core, not part of it), minified and gzipped: ${shared.gzip} B`);
  const i = process.argv.indexOf('--json');
  const report = i > 0 ? process.argv[i + 1] : join('bench', 'results', 'size.json');
  mkdirSync(dirname(report), { recursive: true });
  writeFileSync(report, JSON.stringify({ budgetBytes: UMD_BUDGET_BYTES, bundles: rows }, null, 2) + '\n');
  console.log(`report: ${report}`);
}
