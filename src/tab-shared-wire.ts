import { IMError, type IMErrorCode } from './index';
import type { StateReason } from './client-types';
import type { ClientStateName } from './state';

/** The part of the Web Locks API (`navigator.locks`) the tab-shared client uses. */
export interface LockManagerLike {
  request(name: string, options: { signal?: unknown }, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
}

/** The part of a `BroadcastChannel` the tab-shared client uses. */
export interface BroadcastChannelLike {
  onmessage: ((event: { data: unknown }) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}

/** A `BroadcastChannel` constructor (the browser's, Node's, or a test double). */
export type BroadcastChannelConstructor = new (name: string) => BroadcastChannelLike;

/** A send request as it travels from the calling tab to the leader; the fp is the calling tab's. */
export interface SendRequest {
  to: string;
  content: string;
  typeu: number;
  qos: boolean;
  fp: string | null;
}

/** An error as it crosses the channel (structured clone drops an Error's own fields such as `code`). */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  fields?: Record<string, unknown>;
}

/**
 * Messages between the tabs of one user, each stamped with the sending tab's id `t`:
 *
 * ```
 *  follower ── hello ──────────────> leader ── sync (state, firstLoginTime, session) ──> every tab
 *  follower ── send / echo / retry ─> leader ── reply (to the asking tab) ────────────> follower
 *  any tab ─── logout ──────────────> every tab (the leader logs out; the others stop at once)
 *  leader ──── event (message, delivered, lost, kicked, …) ──> every tab
 *  leader ──── end (the session is over) ──> every tab ── ack ──> leader (then it releases the lock)
 *  any tab ─── bye (destroyed) ──> every tab
 * ```
 */
export type WireMessage =
  | { k: 'hello'; t: string }
  | { k: 'sync'; t: string; sid: string; state: ClientStateName; reason: StateReason; flt: number }
  | { k: 'event'; t: string; sid: string; type: string; e: unknown }
  | { k: 'send'; t: string; id: number; req: SendRequest }
  | { k: 'echo'; t: string; id: number }
  | { k: 'retry'; t: string }
  | { k: 'logout'; t: string; sid: string | null }
  | { k: 'reply'; t: string; to: string; id: number; ok: boolean; v?: unknown; err?: WireError }
  | { k: 'end'; t: string; sid: string; reason: StateReason; err: WireError }
  | { k: 'ack'; t: string; to: string }
  | { k: 'bye'; t: string };

/** Turns an error into plain data that survives structured cloning. */
export function encodeError(error: unknown): WireError {
  if (error instanceof IMError) {
    const fields: Record<string, unknown> = {};
    for (const key of Object.keys(error)) {
      const value = (error as unknown as Record<string, unknown>)[key];
      if (key !== 'code' && key !== 'cause' && key !== 'name' && key !== 'message' && (value === undefined || typeof value !== 'object')) fields[key] = value;
    }
    return { name: 'IMError', message: error.message, code: error.code, fields };
  }
  const e = error as { name?: unknown; message?: unknown } | null;
  return { name: e && typeof e.name === 'string' ? e.name : 'Error', message: e && typeof e.message === 'string' ? e.message : String(error) };
}

/** Rebuilds an error encoded by {@link encodeError}: an `IMError` with its fields, or a `TypeError`/`RangeError`/`Error`. */
export function decodeError(w: WireError | undefined): Error {
  if (!w || typeof w !== 'object') return new IMError('PROTOCOL_ERROR', 'a tab sent a malformed error');
  if (w.name === 'IMError' && typeof w.code === 'string') {
    const fields = w.fields || {};
    const error = new IMError(w.code as IMErrorCode, w.message, fields.serverCode as number | undefined);
    for (const key of Object.keys(fields)) {
      if (key !== 'serverCode' && key !== 'message' && key !== 'name') (error as unknown as Record<string, unknown>)[key] = fields[key];
    }
    return error;
  }
  const error = w.name === 'TypeError' ? new TypeError(w.message) : w.name === 'RangeError' ? new RangeError(w.message) : new Error(w.message);
  return error;
}

/** An event payload ready for the channel: an error, or an `error` field, is encoded. */
export function encodeEvent(payload: unknown): unknown {
  if (payload instanceof Error) return { $error: encodeError(payload) };
  if (payload && typeof payload === 'object' && (payload as { error?: unknown }).error instanceof Error) {
    return { ...(payload as object), error: encodeError((payload as { error: unknown }).error), $field: true };
  }
  return payload;
}

/** Reverses {@link encodeEvent}. */
export function decodeEvent(data: unknown): unknown {
  if (!data || typeof data !== 'object') return data;
  const d = data as { $error?: WireError; $field?: boolean; error?: WireError };
  if (d.$error) return decodeError(d.$error);
  if (d.$field) {
    const out: Record<string, unknown> = { ...(d as object), error: decodeError(d.error) };
    delete out.$field;
    return out;
  }
  return data;
}

/** The error that settles what was waiting when a session stops for `reason`. */
export function errorFor(reason: StateReason): IMError {
  switch (reason) {
    case 'logout':
      return new IMError('LOGGED_OUT', 'logged out before the message was delivered');
    case 'kicked':
      return new IMError('KICKED', 'kicked out by the server');
    case 'login-rejected':
      return new IMError('LOGIN_REJECTED', 'the server rejected the login');
    case 'reconnect-failed':
      return new IMError('RECONNECT_FAILED', 'gave up reconnecting');
    case 'login-timeout':
      return new IMError('LOGIN_TIMEOUT', 'no login response in time');
    default:
      return new IMError('CONNECT_FAILED', `the session stopped (${reason})`);
  }
}
