// Builds the SDK package: ESM and CJS (one entry for the core, one per adapter, with .d.ts / .d.cts
// declarations beside them), the UMD bundle (core + browser adapter, plain and minified), and the
// tab-shared UMD bundle, which takes the core from the global `MobileIMSDK` instead of carrying it again.
import { readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import typescript from '@rollup/plugin-typescript';
import terser from '@rollup/plugin-terser';
import nodeResolve from '@rollup/plugin-node-resolve';

const UMD_ENTRY = 'browser-bundle.ts';

// Start from an empty dist/ so no stale chunk from an earlier build is packed.
rmSync('dist', { recursive: true, force: true });

// Every file directly in adapters/ is a public entry (a subpath export); helpers live in adapters/internal/.
const adapterEntries = Object.fromEntries(
  readdirSync('adapters')
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && f !== UMD_ENTRY)
    .map((f) => [`adapters/${f.slice(0, -3)}`, `adapters/${f}`]),
);
const input = { 'src/index': 'src/index.ts', 'src/tab-shared': 'src/tab-shared.ts', ...adapterEntries };

const resolve = () => nodeResolve({ browser: true });

const walkDeclarations = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walkDeclarations(join(dir, e.name)) : e.name.endsWith('.d.ts') ? [join(dir, e.name)] : [],
  );

/** Points every relative import of a declaration file at `ext`, as Node16 module resolution requires. */
const withExtension = (text, ext) =>
  text.replace(/((?:from\s+|import\()\s*['"])(\.{1,2}\/[^'"]*?)(\.js)?(['"])/g, `$1$2${ext}$4`);

/** Adds `.js` to the relative imports of the ESM declarations. */
function esmDeclarations() {
  return {
    name: 'esm-declarations',
    writeBundle() {
      for (const file of walkDeclarations('dist/esm')) writeFileSync(file, withExtension(readFileSync(file, 'utf8'), '.js'));
    },
  };
}

/** Copies every ESM declaration to dist/cjs as .d.cts, pointing its relative imports at .cjs files. */
function cjsDeclarations() {
  return {
    name: 'cjs-declarations',
    writeBundle() {
      for (const file of walkDeclarations('dist/esm')) {
        const target = join('dist/cjs', relative('dist/esm', file)).replace(/\.d\.ts$/, '.d.cts');
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, withExtension(readFileSync(file, 'utf8'), '.cjs'));
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

/** In the tab-shared UMD bundle, the core's public entry is the package itself (the `MobileIMSDK` global). */
function coreAsExternal() {
  return {
    name: 'core-as-external',
    resolveId(source, importer) {
      if (source === './index' && importer && /[\\/]src[\\/]tab-shared[^\\/]*\.ts$/.test(importer)) return { id: 'mobileimsdk-ts', external: true };
      return null;
    },
  };
}

/**
 * The production switch of the minified UMD bundle: `src/dev.ts` reads `DEV = false`, so the minifier drops
 * the long programmer-error messages (each still names what was wrong). Every other build keeps them.
 */
function production() {
  return {
    name: 'production',
    load(id) {
      return /[\\/]src[\\/]dev\.ts$/.test(id) ? 'export const DEV = false;\n' : null;
    },
  };
}

/** Writes the tab-shared UMD bundle's declaration file: its ESM types under the global `MobileIMSDKTabShared`. */
function tabSharedUmdDeclarations() {
  return {
    name: 'tab-shared-umd-declarations',
    writeBundle() {
      mkdirSync('dist/umd', { recursive: true });
      const text = "export * from '../esm/src/tab-shared.js';\nexport as namespace MobileIMSDKTabShared;\n";
      writeFileSync('dist/umd/mobileimsdk-tab-shared.d.ts', text);
      writeFileSync('dist/umd/mobileimsdk-tab-shared.min.d.ts', text);
    },
  };
}

const minify = () => terser({ ecma: 2017, compress: { passes: 3, keep_fargs: false, pure_getters: true, hoist_funs: true }, mangle: { properties: { regex: /^_[A-Za-z]/ } } });

export default [
  {
    input,
    plugins: [
      resolve(),
      typescript({ tsconfig: './tsconfig.json', declaration: true, declarationDir: 'dist/esm', outDir: 'dist/esm' }),
      esmDeclarations(),
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
    output: { file: 'dist/umd/mobileimsdk.js', format: 'umd', name: 'MobileIMSDK', exports: 'named' },
  },
  {
    input: `adapters/${UMD_ENTRY}`,
    plugins: [resolve(), production(), typescript({ tsconfig: './tsconfig.json', declaration: false, outDir: 'dist/umd' })],
    output: [
      {
        file: 'dist/umd/mobileimsdk.min.js',
        format: 'umd',
        name: 'MobileIMSDK',
        exports: 'named',
        // Private members, and the members of the core's internal classes (never part of the package's API),
        // are spelled with a leading underscore so the minifier may shorten them.
        plugins: [minify()],
      },
    ],
  },
  {
    input: 'src/tab-shared.ts',
    external: ['mobileimsdk-ts'],
    plugins: [coreAsExternal(), resolve(), typescript({ tsconfig: './tsconfig.json', declaration: false, outDir: 'dist/umd' }), tabSharedUmdDeclarations()],
    output: [
      { file: 'dist/umd/mobileimsdk-tab-shared.js', format: 'umd', name: 'MobileIMSDKTabShared', exports: 'named', globals: { 'mobileimsdk-ts': 'MobileIMSDK' } },
      {
        file: 'dist/umd/mobileimsdk-tab-shared.min.js',
        format: 'umd',
        name: 'MobileIMSDKTabShared',
        exports: 'named',
        globals: { 'mobileimsdk-ts': 'MobileIMSDK' },
        plugins: [minify()],
      },
    ],
  },
];
