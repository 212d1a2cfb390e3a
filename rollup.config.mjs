// Builds the SDK package: ESM and CJS (one entry for the core, one per adapter, with .d.ts / .d.cts
// declarations beside them) and the UMD bundle (core + browser adapter, plain and minified).
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import typescript from '@rollup/plugin-typescript';
import terser from '@rollup/plugin-terser';
import nodeResolve from '@rollup/plugin-node-resolve';

const UMD_ENTRY = 'browser-bundle.ts';

// Every file directly in adapters/ is a public entry (a subpath export); helpers live in adapters/internal/.
const adapterEntries = Object.fromEntries(
  readdirSync('adapters')
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && f !== UMD_ENTRY)
    .map((f) => [`adapters/${f.slice(0, -3)}`, `adapters/${f}`]),
);
const input = { 'src/index': 'src/index.ts', ...adapterEntries };

const resolve = () => nodeResolve({ browser: true });

/** Copies every ESM declaration to dist/cjs as .d.cts, pointing its relative imports at .cjs files. */
function cjsDeclarations() {
  const walk = (dir) =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
    );
  return {
    name: 'cjs-declarations',
    writeBundle() {
      for (const file of walk('dist/esm')) {
        const target = join('dist/cjs', relative('dist/esm', file)).replace(/\.d\.ts$/, '.d.cts');
        const text = readFileSync(file, 'utf8').replace(/(from\s+['"]\.{1,2}\/[^'"]*?)(\.js)?(['"])/g, '$1.cjs$3');
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, text);
      }
    },
  };
}

/** Writes the UMD bundle's declaration file: the ESM types under the global `MobileIMSDK`. */
function umdDeclarations() {
  return {
    name: 'umd-declarations',
    writeBundle() {
      mkdirSync('dist/umd', { recursive: true });
      const text =
        "export * from '../esm/src/index.js';\nexport * from '../esm/adapters/browser.js';\nexport as namespace MobileIMSDK;\n";
      writeFileSync('dist/umd/mobileimsdk.d.ts', text);
      writeFileSync('dist/umd/mobileimsdk.min.d.ts', text);
    },
  };
}

export default [
  {
    input,
    plugins: [
      resolve(),
      typescript({ tsconfig: './tsconfig.json', declaration: true, declarationDir: 'dist/esm', outDir: 'dist/esm' }),
    ],
    output: { dir: 'dist/esm', format: 'es', entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
  },
  {
    input,
    plugins: [resolve(), typescript({ tsconfig: './tsconfig.json', declaration: false, outDir: 'dist/cjs' }), cjsDeclarations()],
    output: {
      dir: 'dist/cjs',
      format: 'cjs',
      exports: 'named',
      entryFileNames: '[name].cjs',
      chunkFileNames: 'chunks/[name]-[hash].cjs',
    },
  },
  {
    input: `adapters/${UMD_ENTRY}`,
    plugins: [resolve(), typescript({ tsconfig: './tsconfig.json', declaration: false, outDir: 'dist/umd' }), umdDeclarations()],
    output: [
      { file: 'dist/umd/mobileimsdk.js', format: 'umd', name: 'MobileIMSDK', exports: 'named' },
      { file: 'dist/umd/mobileimsdk.min.js', format: 'umd', name: 'MobileIMSDK', exports: 'named', plugins: [terser({ ecma: 2017, compress: { passes: 2 }, mangle: { properties: { regex: /^_[A-Za-z]/ } } })] },
    ],
  },
];
