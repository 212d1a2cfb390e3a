import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The captured MobileIMSDK frames live in the shared protocol folder beside the repository. */
export const vectorsDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/protocol/vectors');
export const haveVectors = existsSync(resolve(vectorsDir, 'ws-session-transcripts.jsonl'));

/** The environment variable that lets a package-only checkout (no shared/ beside it) skip the vector tests. */
export const SKIP_VECTORS_ENV = 'MOBILEIMSDK_SKIP_VECTORS';

/**
 * Whether the vector tests run: true when the captured vectors are there. Missing vectors fail the run
 * (a skip would hide them) unless `MOBILEIMSDK_SKIP_VECTORS=1` says this checkout has no shared folder.
 */
export function requireVectors(present = haveVectors, env: Record<string, string | undefined> = process.env): boolean {
  if (present) return true;
  if (env[SKIP_VECTORS_ENV] === '1') return false;
  throw new Error(`no captured protocol vectors at ${vectorsDir}: check out shared/ beside the repository, or set ${SKIP_VECTORS_ENV}=1 for a package-only checkout`);
}

export interface VectorLine {
  scenario: string;
  conn?: string;
  dir: 'client->server' | 'server->client';
  frame?: Record<string, unknown>;
  text?: string;
  raw?: string;
  close?: { code: number; reason: string };
  lengthPrefix?: number;
  event?: string;
}

/** Reads one .jsonl transcript. */
export function readVectors(name: string): VectorLine[] {
  return readFileSync(resolve(vectorsDir, name), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as VectorLine);
}
