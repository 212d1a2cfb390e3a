// Bundles the server (and the shared protocol modules from ../src) into dist/index.js and dist/cli.js.
// The runtime dependencies and Node's built-in modules stay external.
import { chmodSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import typescript from '@rollup/plugin-typescript';

// Every runtime dependency stays external: npm installs them beside the package.
const deps = Object.keys(JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')).dependencies ?? {});
const external = new Set([...deps, ...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

export default {
  input: { index: 'src/index.ts', cli: 'src/cli.ts' },
  external: (id) => external.has(id),
  plugins: [
    typescript({ tsconfig: './tsconfig.json', outDir: 'dist', declaration: true, declarationDir: 'dist/types', noEmitOnError: true }),
    // The `bin` must be executable to run as ./dist/cli.js and through `npx mobileimsdk-ts-server`.
    { name: 'chmod-cli', writeBundle: () => chmodSync(new URL('./dist/cli.js', import.meta.url), 0o755) },
  ],
  output: {
    dir: 'dist',
    format: 'es',
    entryFileNames: '[name].js',
    chunkFileNames: '[name].js',
    banner: (chunk) => (chunk.name === 'cli' ? '#!/usr/bin/env node' : ''),
  },
};
