import type { Protocal } from '../../src/protocol';
import type { QosOutcome } from './qos-s2c';

/**
 * What one cluster node publishes to another's channel (`<prefix>node:<id>`, routing-redis.ts). The
 * store's scripts publish two of them themselves (store-redis-lua.ts): a data frame with the put that
 * stores it, and a receipt with the removal its receiver's ACK causes.
 */
export type Routed =
  | { t: 'data'; to: string; frame: Protocal; reply?: { node: string; id: number } }
  | { t: 'outcome'; id: number; outcome: QosOutcome }
  | { t: 'outcomes'; r: Array<number | QosOutcome> }
  | { t: 'receipt'; sender: string; receiver: string; fp: string; atMs: number }
  | { t: 'kick'; user: string; code: number; reason?: string }
  | { t: 'end'; user: string; session: number; firstLoginTime: number; code: number | null };

/**
 * The start of a routed data frame for `to`, without a reply: the put script appends the stored frame
 * (its JSON, as `encoded`) and a closing brace, which gives `{"t":"data","to":…,"frame":{…}}`.
 */
export function routedDataHead(to: string): string {
  return `{"t":"data","to":${JSON.stringify(to)},"frame":`;
}

/** A routed receipt, as published. */
export function routedReceipt(sender: string, receiver: string, fp: string, atMs: number): string {
  const m: Routed = { t: 'receipt', sender, receiver, fp, atMs };
  return JSON.stringify(m);
}
