import { decodeFrame, SERVER_ID, type Protocal } from '../../src/protocol';
import { encoded } from './bounds';
import type { ServerContext } from './context';
import { ServerErrorCode } from './errors';
import { settleWithin } from './hooks';
import { isPromise, type MaybePromise } from './maybe-promise';
import type { ExpiredMessage } from './offline-store';
import type { QosWaiter } from './routing';
import type { DedupWindowName } from './store';
import { OfflineStoreError } from './store-error';

/**
 * How handing a message to its receiver went: `full` is the receiver's box, `quota` the whole store's
 * limit, `unavailable` a store that cannot write durably now (nothing was stored, nothing may be ACKed),
 * `uncertain` a store that failed after the write went out (it may hold the message: neither ACK nor
 * refuse it, a retry with the same fp settles it), `busy` a receiver online while the QoS table, or that
 * receiver's share of it, is at its bound (neither written nor stored), `duplicate` (only when asked
 * to check) a retransmission of a message the `remember` window has seen (nothing done: ACK it again).
 */
export type DeliveryResult = 'sent' | 'stored' | 'dropped' | 'full' | 'quota' | 'unavailable' | 'uncertain' | 'busy' | 'duplicate';

/**
 * Hands a message to user `msg.to`. QoS messages are stored durably first (unless an `onOffline` hook
 * replaces the store), then written if the user is online and tracked by the QoS daemon; they leave the
 * store only on the receiver's ACK, so a crash or a lost retransmission never loses them. `remember`:
 * the put also records `msg`'s (from, fp) in that de-duplication window (the caller leaves it out with
 * an `onOffline` hook, which replaces the put). `unlessSeen` (with `remember`, for a store with
 * `putUnlessSeen`): a message whose (from, fp) that window holds already is a retransmission, answered
 * `duplicate` by the put itself, one round trip instead of two.
 */
export async function deliver(ctx: ServerContext, msg: Protocal, waiter?: QosWaiter, remember?: DedupWindowName, unlessSeen = false): Promise<DeliveryResult> {
  const to = msg.to as string;
  const from = msg.from ?? SERVER_ID;
  // Routed at write time, not before the awaits below: the receiver may log in while the message is
  // being stored, after its replay has already listed the store (or before, and the replay sent it).
  // Past the QoS table's bounds a written message is refused, not stored behind the back of a receiver
  // who is online and would not see it before its next login.
  const writeOnline = () => ctx.routing.sendData(to, msg, waiter);
  if (!msg.QoS || !msg.fp) {
    const w = writeOnline();
    return (isPromise(w) ? await w : w) ? 'sent' : 'dropped';
  }
  const room = ctx.routing.hasRoom(to, msg);
  if (!(isPromise(room) ? await room : room)) {
    ctx.opts.logger.debug(`message ${msg.fp} to "${to}" refused with error ${ServerErrorCode.SERVER_BUSY}: the QoS table or "${to}"'s share of it is full`);
    return 'busy';
  }
  const hook = ctx.opts.hooks.onOffline;
  if (hook) {
    const w = writeOnline();
    if (isPromise(w) ? await w : w) return 'sent';
    let ok = false;
    try {
      ok = (await settleWithin(hook(msg), ctx.opts.hookTimeoutMs, 'onOffline')) === true;
    } catch (err) {
      ctx.opts.logger.error('hook onOffline failed', err);
    }
    if (ok) ctx.metrics.offlineStored++;
    return ok ? 'stored' : 'dropped';
  }
  let inserted: boolean;
  // Set when the message was written while being stored (a held put).
  let written: boolean | null = null;
  try {
    if (!ctx.store.checksBoxLimit) {
      const count = ctx.store.count(to);
      if ((isPromise(count) ? await count : count) >= ctx.opts.maxOfflinePerUser) return 'full';
    }
    const putStartMs = performance.now();
    let put: MaybePromise<boolean | 'seen' | 'routed'>;
    if (ctx.store.putAndRoute && !waiter && !ctx.sessions.current(to)) {
      // A cluster: the put also hands the frame to the node holding the receiver, when another node
      // does. A receiver here (or one whose push waits for an outcome) is written to as below.
      put = ctx.store.putAndRoute(to, from, msg.fp, encoded(msg), remember, unlessSeen && !!remember);
    } else if (ctx.store.putHeld && ctx.sessions.current(to)) {
      // The receiver is here: the store refuses at once or takes the message, which is then written
      // while it is stored; a receiver that ACKs before the commit spares the disk write. The sender's
      // ACK still waits for one or the other.
      put = ctx.store.putHeld(to, from, msg.fp, encoded(msg), remember);
      const w = writeOnline();
      if (isPromise(put) && isPromise(w)) put.catch(() => {});
      written = isPromise(w) ? await w : w;
    } else {
      put = unlessSeen && remember && ctx.store.putUnlessSeen ? ctx.store.putUnlessSeen(to, from, msg.fp, encoded(msg), remember) : ctx.store.put(to, from, msg.fp, encoded(msg), remember);
    }
    if (isPromise(put)) put = await put;
    ctx.metrics.storeWriteLatency.observe((performance.now() - putStartMs) / 1000);
    if (put === 'seen') return 'duplicate';
    if (put === 'routed') return 'sent';
    inserted = put;
  } catch (err) {
    const refused = storeRefused(ctx, to, msg.fp, err);
    // Written already, so maybe delivered: a refusal would report a loss. No ACK either; the retry settles it.
    return written ? 'uncertain' : refused;
  }
  const w = written ?? writeOnline();
  if (isPromise(w) ? await w : w) return 'sent';
  if (inserted) ctx.metrics.offlineStored++;
  return 'stored';
}

/** The QoS daemon's retransmission: to whatever session of this process the receiver is online with now. */
export function resendFrame(ctx: ServerContext, frame: Protocal): void {
  const target = frame.to ? ctx.sessions.current(frame.to) : undefined;
  ctx.metrics.retransmissions++;
  if (target && !target.closed) ctx.io.send(target, frame);
}

/**
 * Stored messages that expired before their receiver ACKed them (the sender had its ACK when they were
 * stored): they are gone for good, so `onLost` hears of them, as of any other lost QoS message.
 */
export function storedExpired(ctx: ServerContext, messages: ExpiredMessage[]): void {
  ctx.metrics.offlineExpired += messages.length;
  const frames: Protocal[] = [];
  for (const m of messages) {
    try {
      frames.push(decodeFrame(m.frame));
    } catch {
      ctx.opts.logger.error(`an expired stored message ${m.fp} for "${m.to}" is unreadable`);
    }
  }
  if (frames.length > 0) ctx.safely('onLost', () => ctx.opts.hooks.onLost?.(frames));
}

/**
 * A put the store refused: the global quota, the receiver's box, uncertain (the store may have written
 * it), or (for any other failure) unavailable; logged either way.
 */
function storeRefused(ctx: ServerContext, to: string, fp: string, err: unknown): 'quota' | 'full' | 'unavailable' | 'uncertain' {
  if (err instanceof OfflineStoreError && err.mayHaveWritten) {
    ctx.opts.logger.debug(`message ${fp} to "${to}" neither ACKed nor refused: ${err.message}`);
    return 'uncertain';
  }
  if (err instanceof OfflineStoreError && (err.reason === 'quota' || err.reason === 'full')) {
    ctx.opts.logger.debug(`message ${fp} to "${to}" refused: ${err.message}`);
    return err.reason;
  }
  if (err instanceof OfflineStoreError) ctx.opts.logger.debug(`message ${fp} to "${to}" refused: ${err.message}`);
  else ctx.opts.logger.error(`storing message ${fp} for "${to}" failed; refused with error ${ServerErrorCode.STORE_UNAVAILABLE}`, err);
  return 'unavailable';
}
