import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import uni from '@dcloudio/vite-plugin-uni';

// Inside this repository the demo uses the SDK the repository builds (`npm run build` at the root writes
// ../dist). In your own project run `npm install mobileimsdk-ts` and delete this alias: the imports in
// src/ are the package's own names ('mobileimsdk-ts', 'mobileimsdk-ts/adapters/uni').
const sdk = fileURLToPath(new URL('../dist/esm/', import.meta.url));

export default defineConfig({
  plugins: [uni()],
  resolve: {
    alias: [
      { find: /^mobileimsdk-ts$/, replacement: `${sdk}src/index.js` },
      { find: /^mobileimsdk-ts\/adapters\/([a-z]+)$/, replacement: `${sdk}adapters/$1.js` },
    ],
  },
});
