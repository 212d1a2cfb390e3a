import { MsgType, SERVER_ID, type Protocal } from '../../src/protocol';
import { encodesWithin, forgetEncoding, frameBytes, MAX_FP_LENGTH } from './bounds';
import type { ServerContext } from './context';
import { deliver } from './deliver';
import { ServerErrorCode } from './errors';
import { settleWithin, type BeforeVerdict } from './hooks';
import { isPromise, type MaybePromise } from './maybe-promise';
import { receiptAfterAck, sendAck, sendAckWithReceiptDue } from './receipt-after-ack';
import { forwardReceipt } from './receipts';
import { replaySettled } from './replay';
import { describeSession, type Session } from './session';
import { isValidUserId } from './user-id';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * The bounds every data and ACK frame passes before any bookkeeping (dedup, QoS table, store, the
 * connection's queue): an fp of at most {@link MAX_FP_LENGTH} characters (error 320, the fp not echoed)
 * and an encoded size of at most `maxMessageBytes` (error 311 naming the fp and the limit). The
 * connection stays; false when the frame was refused. `chars` is the length of the text the frame was
 * decoded from: a frame whose text is that short cannot encode past the limit, so it is not encoded here.
 */
export function admitFrame(ctx: ServerContext, s: Session, p: Protocal, chars: number): boolean {
  const fp = p.type === MsgType.ACK ? p.dataContent : p.fp;
  if (fp != null && fp.length > MAX_FP_LENGTH) {
    ctx.metrics.badInput++;
    ctx.opts.logger.debug(`${describeSession(s)}: refused a type-${p.type} frame with a ${fp.length}-character fp`);
    ctx.io.sendError(s, ServerErrorCode.FP_TOO_LONG, `an fp longer than ${MAX_FP_LENGTH} characters is refused`);
    return false;
  }
  const limit = ctx.opts.maxMessageBytes;
  if (encodesWithin(chars, limit)) return true;
  const size = frameBytes(p);
  if (size > limit) {
    ctx.metrics.badInput++;
    ctx.opts.logger.debug(`${describeSession(s)}: refused a type-${p.type} frame of ${size} bytes`);
    const about = { fp: p.type === MsgType.DATA ? p.fp : null, limit };
    ctx.io.sendError(s, ServerErrorCode.FRAME_TOO_LARGE, `a message of ${size} bytes exceeds the ${limit}-byte limit every receiver can read`, about);
    return false;
  }
  return true;
}

/**
 * Type 2 from a logged-in user (already through {@link admitFrame}): `from` must be the user
 * (a missing one is filled in); to "0" is C2S (dedup, ACK, `onC2S`), anything else C2C (dedup, store,
 * forward, the server's ACK on the receiver's behalf).
 */
export async function handleData(ctx: ServerContext, s: Session, uid: string, p: Protocal): Promise<void> {
  const startMs = performance.now();
  const admitted = p;
  if (p.from == null) p = { ...p, from: uid };
  else if (p.from !== uid) {
    ctx.io.sendError(s, ServerErrorCode.SPOOFED_FROM, `refused: from "${p.from}" is not this connection's user "${uid}"`);
    return;
  }
  if (p.QoS && !p.fp) {
    ctx.io.sendError(s, ServerErrorCode.BAD_MESSAGE, 'a QoS message needs an fp');
    return;
  }
  // Java clients read typeu as an int and sm as a long (Gson): a relayed frame outside those ranges would
  // make every receiving Java client fail to parse it, again on each replay of its stored copy.
  if (p.typeu < INT32_MIN || p.typeu > INT32_MAX || !Number.isSafeInteger(p.sm)) {
    ctx.io.sendError(s, ServerErrorCode.BAD_MESSAGE, 'typeu must fit a 32-bit int and sm a safe integer');
    return;
  }
  if (p.to === SERVER_ID) return handleC2S(ctx, s, uid, p);
  if (!isValidUserId(p.to)) {
    ctx.io.sendError(s, ServerErrorCode.BAD_MESSAGE, 'a message needs a receiver in "to" that can be a user: not blank, not "-1", at most 256 characters', { fp: p.fp });
    return;
  }
  // A retransmission of a message already accepted (its ACK was lost) is ACKed again, not handed on again:
  // the first copy is delivered or stored until its receiver ACKs it.
  const dedupFp = p.QoS && p.fp ? p.fp : null;
  // A store that checks the window in its put (Redis: one round trip for both) does so when no hook may
  // change or take the message before it is stored; otherwise the window is asked first.
  const seenInPut = !!dedupFp && !!ctx.store.putUnlessSeen && !ctx.opts.hooks.beforeC2C && !ctx.opts.hooks.onOffline;
  if (dedupFp && !seenInPut) {
    let seen: MaybePromise<boolean>;
    try {
      seen = ctx.store.seen('c2c', uid, dedupFp);
      if (isPromise(seen)) seen = await seen;
    } catch (err) {
      // Unknown, so handled as new: the put below is idempotent per (receiver, sender, fp), and refuses when the store is down.
      ctx.opts.logger.warn(`the c2c de-duplication window cannot be read; message ${dedupFp} of "${uid}" is handled as new`, { error: (err as Error).message });
      seen = false;
    }
    if (seen) {
      sendAck(ctx, s, dedupFp, p.to, uid);
      return;
    }
  }
  const msg = ctx.opts.hooks.beforeC2C ? await runBefore(ctx, s, 'beforeC2C', p) : p;
  if (!msg) return;
  if (!isValidUserId(msg.to)) {
    ctx.opts.logger.warn('hook beforeC2C returned a message without a valid user receiver; refused with error 318');
    ctx.io.sendError(s, ServerErrorCode.SERVER_ERROR, 'the message could not be handled', { fp: p.fp });
    return;
  }
  // Sized again when it is no longer the frame admitFrame sized: the from filled in, or a hook's rewrite.
  const size = msg === admitted ? 0 : frameBytes(msg);
  if (size > ctx.opts.maxMessageBytes) {
    ctx.io.sendError(s, ServerErrorCode.FRAME_TOO_LARGE, `a message of ${size} bytes exceeds the ${ctx.opts.maxMessageBytes}-byte limit every receiver can read`, {
      fp: p.fp,
      limit: ctx.opts.maxMessageBytes,
    });
    return;
  }
  // The store records the (sender, fp) in the C2C window with the put itself (one round trip to Redis
  // fewer) when the message keeps the sender and fp it came with; a hook that changed them is remembered below.
  const rememberedByPut = !!dedupFp && msg.QoS && msg.fp === dedupFp && (msg.from ?? uid) === uid && !ctx.opts.hooks.onOffline;
  const result = await deliver(ctx, msg, undefined, rememberedByPut ? 'c2c' : undefined, seenInPut);
  if (result === 'duplicate') {
    sendAck(ctx, s, dedupFp as string, p.to, uid);
    return;
  }
  if (result === 'sent') ctx.metrics.relayLatency.observe((performance.now() - startMs) / 1000);
  if (result === 'sent') ctx.safely('onC2C', () => ctx.opts.hooks.onC2C?.(msg));
  if (result === 'full') {
    ctx.io.sendError(s, ServerErrorCode.OFFLINE_BOX_FULL, `the offline box of "${msg.to}" is full`, { fp: p.fp });
    return;
  }
  if (result === 'quota') {
    ctx.io.sendError(s, ServerErrorCode.OFFLINE_STORE_FULL, 'the server cannot store more messages now; retry later', { fp: p.fp });
    return;
  }
  if (result === 'unavailable') {
    ctx.io.sendError(s, ServerErrorCode.STORE_UNAVAILABLE, 'the server cannot store messages durably now; retry later', { fp: p.fp });
    return;
  }
  // The store may hold it (Redis failed after the write went out): no ACK, and no refusal that would make
  // the sender report a loss; its retransmission is ACKed once the idempotent put gets an answer.
  if (result === 'uncertain') return;
  if (result === 'busy') {
    ctx.io.sendError(s, ServerErrorCode.SERVER_BUSY, 'too many messages are waiting for delivery; retry later', { fp: p.fp });
    return;
  }
  // The ACK answers the frame the sender sent, whatever the hook rewrote: its fp is what the sender retries.
  if (dedupFp && (result === 'sent' || result === 'stored')) {
    if (!rememberedByPut) await rememberC2c(ctx, uid, dedupFp);
    // Its receiver may have ACKed it already (a held put): the receipt goes with the ACK.
    sendAckWithReceiptDue(ctx, s, uid, p, msg);
  }
}

/** Records a C2C message the store did not record with its put; a failure is logged, never refused. */
async function rememberC2c(ctx: ServerContext, uid: string, dedupFp: string): Promise<void> {
  try {
    const remembered = ctx.store.remember('c2c', uid, dedupFp);
    if (isPromise(remembered)) await remembered;
  } catch (err) {
    // The message is stored: it is ACKed. A retry would be stored no second time, at worst written again (the SDK drops it by fp).
    ctx.opts.logger.warn(`message ${dedupFp} of "${uid}" could not be added to the c2c de-duplication window`, { error: (err as Error).message });
  }
}

/** Type 2 to the server: `beforeC2S`, then the ACK (for QoS), then `onC2S` unless it is a retransmission. */
async function handleC2S(ctx: ServerContext, s: Session, uid: string, p: Protocal): Promise<void> {
  const msg = ctx.opts.hooks.beforeC2S ? await runBefore(ctx, s, 'beforeC2S', p) : p;
  if (!msg) return;
  if (p.QoS && p.fp) {
    let duplicate: boolean;
    try {
      const seen = ctx.store.checkAndRemember('c2s', uid, p.fp);
      duplicate = isPromise(seen) ? await seen : seen;
    } catch (err) {
      // Without the window a retry cannot be told from a new message: refused, no ACK, so the sender retries later.
      ctx.opts.logger.warn(`the c2s de-duplication window cannot be reached; message ${p.fp} of "${uid}" refused with error ${ServerErrorCode.CLUSTER_UNAVAILABLE}`, { error: (err as Error).message });
      ctx.io.sendError(s, ServerErrorCode.CLUSTER_UNAVAILABLE, 'the server cannot reach its cluster state now; retry later', { fp: p.fp });
      return;
    }
    sendAck(ctx, s, p.fp, SERVER_ID, uid);
    if (duplicate) return;
  }
  const info = s.info();
  ctx.safely('onC2S', () => ctx.opts.hooks.onC2S?.(msg, info));
}

/**
 * Type 4 from a logged-in user: settles the server's own QoS entry and the stored copy of the message
 * `fp` that the ACK's `to` sent (a MobileIMSDK ACK's `to` is the acknowledged message's `from`; "0" for
 * the server's pushes), so one sender's message never settles another's with the same fp. Never forwarded.
 * An ACK that settled a tracked message does not wait for its stored copy's removal (a failed removal
 * only means the copy comes again at the next login), so the receiver's next frame is not held up.
 */
export function handleAck(ctx: ServerContext, s: Session, uid: string, p: Protocal): Promise<void> | undefined {
  if (p.from != null && p.from !== uid) {
    ctx.io.sendError(s, ServerErrorCode.SPOOFED_FROM, `refused: ACK from "${p.from}" is not this connection's user "${uid}"`);
    return;
  }
  const fp = p.dataContent;
  const sender = p.to;
  if (!fp) return;
  if (!sender) {
    ctx.opts.logger.debug(`session ${s.id}: an ACK without "to" names no sender; ignored`);
    return;
  }
  const settled = ctx.qos.ack(uid, sender, fp);
  if (settled && ctx.store.removeWithReceipt && !ctx.opts.hooks.onOffline && isValidUserId(sender) && !ctx.sessions.current(sender)) {
    return removeWithReceipt(ctx, uid, sender, fp);
  }
  let removal: MaybePromise<boolean> = false;
  try {
    if (!ctx.opts.hooks.onOffline) removal = ctx.store.remove(uid, sender, fp);
  } catch (err) {
    removalFailed(ctx, uid, fp, err);
  }
  // A store with held puts answers true at once only when this ACK settled a held put (see below).
  if (!isPromise(removal)) return ackSettled(ctx, uid, sender, fp, settled || removal, removal && !!ctx.store.putHeld);
  if (settled) {
    removal.catch((err: unknown) => removalFailed(ctx, uid, fp, err));
    // The removal may also have settled a held put of a retransmission (beside a committed row, which it
    // deletes later), releasing the sender's ACK: the receipt waits for it, until the next turn at most.
    return ackSettled(ctx, uid, sender, fp, true, !!ctx.store.putHeld);
  }
  return removal.then(
    (removed) => ackSettled(ctx, uid, sender, fp, removed),
    (err: unknown) => {
      removalFailed(ctx, uid, fp, err);
      return ackSettled(ctx, uid, sender, fp, false);
    },
  );
}

/**
 * An ACK that settled a tracked message whose sender is not here, in a cluster: the removal of its
 * stored copy also hands the receipt to the sender's node (one round trip instead of two). When no node
 * heard it (the sender is offline or moving, or Redis failed), the receipt is routed or kept as any other.
 */
function removeWithReceipt(ctx: ServerContext, uid: string, sender: string, fp: string): Promise<void> | undefined {
  const atMs = Date.now();
  let removal: MaybePromise<{ removed: boolean; told: boolean }> | undefined;
  try {
    removal = ctx.store.removeWithReceipt?.(uid, sender, fp, atMs);
  } catch (err) {
    removalFailed(ctx, uid, fp, err);
  }
  const untold = (): void => void forwardReceipt(ctx, sender, uid, fp, atMs);
  if (!isPromise(removal)) {
    if (!removal?.told) untold();
  } else {
    removal.then(
      (r) => r.told || untold(),
      (err: unknown) => {
        removalFailed(ctx, uid, fp, err);
        untold();
      },
    );
  }
  return ackSettled(ctx, uid, sender, fp, true, false, true);
}

/** The stored copy stays and comes again at the next login: at least once, never lost. */
function removalFailed(ctx: ServerContext, uid: string, fp: string, err: unknown): void {
  ctx.opts.logger.error(`removing the ACKed message ${fp} of "${uid}" from the offline store failed`, err);
}

/**
 * After an ACK: counts the delivery, tells `onDelivered` and the sender (receipts; not when the removal
 * carries the receipt, `receiptOnItsWay`), and moves the replay on. The receiver's next frame does not
 * wait for a receipt routed to another node, and one that cannot be routed is kept for the sender's next
 * login here. Receipts to one sender may arrive out of order (one carried by a removal, the next routed
 * by itself); each names its own message.
 */
function ackSettled(ctx: ServerContext, uid: string, sender: string, fp: string, delivered: boolean, settledHeldPut = false, receiptOnItsWay = false): Promise<void> | undefined {
  if (delivered) {
    ctx.metrics.delivered++;
    ctx.safely('onDelivered', () => ctx.opts.hooks.onDelivered?.(fp, uid));
    // The ACK names the sender in `to`, and it settled (or removed) only that sender's message. One
    // that settled a held put has just released the sender's own ACK, which is written in this turn's
    // microtasks: the receipt follows it (receipt-after-ack.ts).
    if (isValidUserId(sender) && !receiptOnItsWay) {
      if (settledHeldPut) receiptAfterAck(ctx, sender, uid, fp, Date.now());
      else void forwardReceipt(ctx, sender, uid, fp, Date.now());
    }
  }
  return replaySettled(ctx, uid, sender, fp);
}

/** Runs `beforeC2S`/`beforeC2C`: the message to go on with (maybe rewritten), or null when it stops here. */
async function runBefore(ctx: ServerContext, s: Session, name: 'beforeC2S' | 'beforeC2C', p: Protocal): Promise<Protocal | null> {
  const hook = ctx.opts.hooks[name];
  if (!hook) return p;
  let verdict: BeforeVerdict;
  try {
    verdict = await settleWithin(hook(p, s.info()), ctx.opts.hookTimeoutMs, name);
    forgetEncoding(p);
  } catch (err) {
    ctx.opts.logger.error(`hook ${name} failed`, err);
    ctx.io.sendError(s, ServerErrorCode.SERVER_ERROR, 'the message could not be handled; retry later');
    return null;
  }
  if (verdict === false) return null;
  return verdict && typeof verdict === 'object' ? verdict : p;
}
