/** Type tests: the adapters accept the official platform typings (and reject what is not a platform object). */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const project = (name: string) => fileURLToPath(new URL(`./tsconfig.${name}.json`, import.meta.url));

function typecheck(name: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, '-p', project(name)], (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('adapter typings', () => {
  it.each([
    ['wx', 'createWxAdapter(wx) with miniprogram-api-typings'],
    ['uni', 'createUniAdapter(uni) with @dcloudio/types'],
    ['node', "createTcpAdapter(net) / createUdpAdapter(dgram) with Node's types"],
    ['suite', 'the adapter tests and fakes themselves'],
  ])('%s: %s', async (name) => {
    const result = await typecheck(name);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  }, 60000);
});
