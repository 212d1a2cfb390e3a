import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The captured MobileIMSDK frames live in the shared protocol folder beside the repository. */
export const vectorsDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/protocol/vectors');
export const haveVectors = existsSync(resolve(vectorsDir, 'ws-session-transcripts.jsonl'));

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
