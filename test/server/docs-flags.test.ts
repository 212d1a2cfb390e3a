import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { helpText } from '../../server/src/cli-args';

/** Every flag of `--help` with its environment variable (none for --version and --help). */
function flagsOfHelp(): Array<{ flag: string; env: string | null }> {
  const flags: Array<{ flag: string; env: string | null }> = [];
  for (const line of helpText().split('\n')) {
    const m = /^ {2}(--[a-z0-9-]+)(?: <[a-z]+>)?\s+(IM_[A-Z0-9_]+)?/.exec(line);
    if (m) flags.push({ flag: m[1], env: m[2] ?? null });
  }
  return flags;
}

/** The rows of the flags table of server/README.md ("| Flag | Environment | Default |"). */
function flagTableRows(): string[] {
  const readme = readFileSync(new URL('../../server/README.md', import.meta.url), 'utf8').split('\n');
  const start = readme.findIndex((l) => /^\| Flag \| Environment \| Default \|/.test(l));
  expect(start, 'server/README.md has a "| Flag | Environment | Default |" table').toBeGreaterThanOrEqual(0);
  const rows: string[] = [];
  for (let i = start + 2; i < readme.length && readme[i].startsWith('|'); i++) rows.push(readme[i]);
  return rows;
}

describe('server/README.md documents every CLI flag', () => {
  it('finds the flags in --help (so the check below cannot pass on an empty list)', () => {
    const flags = flagsOfHelp().map((f) => f.flag);
    expect(flags.length).toBeGreaterThanOrEqual(30);
    expect(flags).toContain('--ws-port');
    expect(flags).toContain('--help');
  });

  it('has a row in the flags table for each flag, naming its environment variable and a default', () => {
    const rows = flagTableRows();
    const missing: string[] = [];
    for (const { flag, env } of flagsOfHelp()) {
      const row = rows.find((r) => r.includes(`\`${flag}\``));
      if (!row) {
        missing.push(`${flag}: no row`);
        continue;
      }
      if (env && !row.includes(`\`${env}\``)) missing.push(`${flag}: its row does not name ${env}`);
      const cells = row.split('|').map((c) => c.trim());
      if (env && (cells[3] ?? '') === '') missing.push(`${flag}: its row has no default`);
    }
    expect(missing).toEqual([]);
  });

  it('lists no flag that --help does not know', () => {
    const known = new Set(flagsOfHelp().map((f) => f.flag));
    const documented = flagTableRows().flatMap((r) => (r.split('|')[1] ?? '').match(/--[a-z0-9-]+/g) ?? []);
    expect(documented.filter((f) => !known.has(f))).toEqual([]);
  });
});
