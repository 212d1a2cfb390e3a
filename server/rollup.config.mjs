// Bundles the server (and the shared protocol modules from ../src) into dist/index.js and dist/cli.js.
// ws, better-sqlite3 and Node's built-in modules stay external.
import { builtinModules } from 'node:module';
import typescript from '@rollup/plugin-typescript';

const external = new Set(['ws', 'better-sqlite3', ...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

export default {
  input: { index: 'src/index.ts', cli: 'src/cli.ts' },
  external: (id) => external.has(id),
  plugins: [typescript({ tsconfig: './tsconfig.json', outDir: 'dist', declaration: true, declarationDir: 'dist/types', noEmitOnError: true })],
  output: {
    dir: 'dist',
    format: 'es',
    entryFileNames: '[name].js',
    chunkFileNames: '[name].js',
    banner: (chunk) => (chunk.name === 'cli' ? '#!/usr/bin/env node' : ''),
  },
};
