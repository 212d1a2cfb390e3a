import { createFrame, decodeFrame, encodeFrame, MsgType, SERVER_ID, type Protocal } from '../../src/protocol';
import { MAX_FP_LENGTH, tupleKey } from './bounds';
import type { ServerCore } from './core';
import { ServerErrorCode } from './errors';
import { settleWithin, type BeforeVerdict } from './hooks';
import type { QosOutcome } from './qos-s2c';
import { forwardReceipt } from './receipts';
import type { ExpiredMessage } from './offline-store';
import type { Session } from './session';
import { OfflineStoreError } from './store-error';
import { isValidUserId } from './user-id';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * How handing a message to its receiver went: `full` is the receiver's box, `quota` the whole store's
 * limit, `unavailable` a store that cannot write durably now (nothing was stored, nothing may be ACKed),
 * `busy` a receiver online while the QoS table is at its bound (neither written nor stored).
 */
export type DeliveryResult = 'sent' | 'stored' | 'dropped' | 'full' | 'quota' | 'unavailable' | 'busy';

/**
 * The bounds every data and ACK frame passes before any bookkeeping (dedup, QoS table, store, the
 * connection's queue): an fp of at most {@link MAX_FP_LENGTH} characters (error 320, the fp not echoed)
 * and an encoded size of at most `maxMessageBytes` (error 311 naming the fp and the limit). The
 * connection stays; false when the frame was refused.
 */
export function admitFrame(core: ServerCore, s: Session, p: Protocal): boolean {
  const fp = p.type === MsgType.ACK ? p.dataContent : p.fp;
  const where = `session ${s.id} (${s.transport} ${s.remote})`;
  if (fp != null && fp.length > MAX_FP_LENGTH) {
    core.metrics.badInput++;
    core.opts.logger.debug(`${where}: refused a type-${p.type} frame with a ${fp.length}-character fp`);
    core.sendError(s, ServerErrorCode.FP_TOO_LONG, `an fp longer than ${MAX_FP_LENGTH} characters is refused`);
    return false;
  }
  const size = frameBytes(p);
  const limit = core.opts.maxMessageBytes;
  if (size > limit) {
    core.metrics.badInput++;
    core.opts.logger.debug(`${where}: refused a type-${p.type} frame of ${size} bytes`);
    const about = { fp: p.type === MsgType.DATA ? p.fp : null, limit };
    core.sendError(s, ServerErrorCode.FRAME_TOO_LARGE, `a message of ${size} bytes exceeds the ${limit}-byte limit every receiver can read`, about);
    return false;
  }
  return true;
}

/**
 * Type 2 from a logged-in user (already through {@link admitFrame}): `from` must be the user
 * (a missing one is filled in); to "0" is C2S (dedup, ACK, `onC2S`), anything else C2C (dedup, store,
 * forward, the server's ACK on the receiver's behalf).
 */
export async function handleData(core: ServerCore, s: Session, uid: string, p: Protocal): Promise<void> {
  const startMs = performance.now();
  if (p.from == null) p = { ...p, from: uid };
  else if (p.from !== uid) {
    core.sendError(s, ServerErrorCode.SPOOFED_FROM, `refused: from "${p.from}" is not this connection's user "${uid}"`);
    return;
  }
  if (p.QoS && !p.fp) {
    core.sendError(s, ServerErrorCode.BAD_MESSAGE, 'a QoS message needs an fp');
    return;
  }
  // Java clients read typeu as an int and sm as a long (Gson): a relayed frame outside those ranges would
  // make every receiving Java client fail to parse it, again on each replay of its stored copy.
  if (p.typeu < INT32_MIN || p.typeu > INT32_MAX || !Number.isSafeInteger(p.sm)) {
    core.sendError(s, ServerErrorCode.BAD_MESSAGE, 'typeu must fit a 32-bit int and sm a safe integer');
    return;
  }
  if (p.to === SERVER_ID) return handleC2S(core, s, uid, p);
  if (!isValidUserId(p.to)) {
    core.sendError(s, ServerErrorCode.BAD_MESSAGE, 'a message needs a receiver in "to" that can be a user: not blank, not "-1", at most 256 characters', { fp: p.fp });
    return;
  }
  // A retransmission of a message already accepted (its ACK was lost) is ACKed again, not handed on again:
  // the first copy is delivered or stored until its receiver ACKs it.
  const dedupKey = p.QoS && p.fp ? tupleKey(uid, p.fp) : null;
  if (dedupKey && core.c2cDedup.has(dedupKey)) {
    sendAck(core, s, p.fp as string, p.to, uid);
    return;
  }
  const msg = await runBefore(core, s, 'beforeC2C', p);
  if (!msg) return;
  if (!isValidUserId(msg.to)) {
    core.opts.logger.warn('hook beforeC2C returned a message without a valid user receiver; refused with error 318');
    core.sendError(s, ServerErrorCode.SERVER_ERROR, 'the message could not be handled', { fp: p.fp });
    return;
  }
  const size = msg === p ? 0 : frameBytes(msg);
  if (size > core.opts.maxMessageBytes) {
    core.sendError(s, ServerErrorCode.FRAME_TOO_LARGE, `a message of ${size} bytes exceeds the ${core.opts.maxMessageBytes}-byte limit every receiver can read`, {
      fp: p.fp,
      limit: core.opts.maxMessageBytes,
    });
    return;
  }
  const result = await deliver(core, msg);
  if (result === 'sent') core.metrics.relayLatency.observe((performance.now() - startMs) / 1000);
  if (result === 'sent') core.safely('onC2C', () => core.opts.hooks.onC2C?.(msg));
  if (result === 'full') {
    core.sendError(s, ServerErrorCode.OFFLINE_BOX_FULL, `the offline box of "${msg.to}" is full`, { fp: p.fp });
    return;
  }
  if (result === 'quota') {
    core.sendError(s, ServerErrorCode.OFFLINE_STORE_FULL, 'the server cannot store more messages now; retry later', { fp: p.fp });
    return;
  }
  if (result === 'unavailable') {
    core.sendError(s, ServerErrorCode.STORE_UNAVAILABLE, 'the server cannot store messages durably now; retry later', { fp: p.fp });
    return;
  }
  if (result === 'busy') {
    core.opts.logger.warn(`too many messages wait for an ACK (${core.qos.size}, ${core.qos.bytes} bytes); refused one from "${uid}"`);
    core.sendError(s, ServerErrorCode.SERVER_BUSY, 'too many messages are waiting for delivery; retry later', { fp: p.fp });
    return;
  }
  // The ACK answers the frame the sender sent, whatever the hook rewrote: its fp is what the sender retries.
  if (dedupKey && (result === 'sent' || result === 'stored')) {
    core.c2cDedup.add(dedupKey);
    sendAck(core, s, p.fp as string, p.to, uid);
  }
}

async function handleC2S(core: ServerCore, s: Session, uid: string, p: Protocal): Promise<void> {
  const msg = await runBefore(core, s, 'beforeC2S', p);
  if (!msg) return;
  if (p.QoS && p.fp) {
    const duplicate = core.dedup.checkAndAdd(tupleKey(uid, p.fp));
    sendAck(core, s, p.fp, SERVER_ID, uid);
    if (duplicate) return;
  }
  const info = s.info();
  core.safely('onC2S', () => core.opts.hooks.onC2S?.(msg, info));
}

/**
 * Type 4 from a logged-in user: settles the server's own QoS entry and the stored copy of the message
 * `fp` that the ACK's `to` sent (a MobileIMSDK ACK's `to` is the acknowledged message's `from`; "0" for
 * the server's pushes), so one sender's message never settles another's with the same fp. Never forwarded.
 */
export async function handleAck(core: ServerCore, s: Session, uid: string, p: Protocal): Promise<void> {
  if (p.from != null && p.from !== uid) {
    core.sendError(s, ServerErrorCode.SPOOFED_FROM, `refused: ACK from "${p.from}" is not this connection's user "${uid}"`);
    return;
  }
  const fp = p.dataContent;
  const sender = p.to;
  if (!fp) return;
  if (!sender) {
    core.opts.logger.debug(`session ${s.id}: an ACK without "to" names no sender; ignored`);
    return;
  }
  const settled = core.qos.ack(uid, sender, fp);
  let removed = false;
  try {
    removed = core.opts.hooks.onOffline ? false : await core.store.remove(uid, sender, fp);
  } catch (err) {
    // The stored copy stays and comes again at the next login: at least once, never lost.
    core.opts.logger.error(`removing the ACKed message ${fp} of "${uid}" from the offline store failed`, err);
  }
  if (settled || removed) {
    core.metrics.delivered++;
    core.safely('onDelivered', () => core.opts.hooks.onDelivered?.(fp, uid));
    // The ACK names the sender in `to`, and it settled (or removed) only that sender's message.
    if (isValidUserId(sender)) forwardReceipt(core, sender, uid, fp, Date.now());
  }
  await replaySettled(core, uid, sender, fp);
}

/**
 * Hands a message to user `msg.to`. QoS messages are stored durably first (unless an `onOffline` hook
 * replaces the store), then written if the user is online and tracked by the QoS daemon; they leave the
 * store only on the receiver's ACK, so a crash or a lost retransmission never loses them.
 */
export async function deliver(core: ServerCore, msg: Protocal, waiter?: (outcome: QosOutcome) => void): Promise<DeliveryResult> {
  const to = msg.to as string;
  const from = msg.from ?? SERVER_ID;
  const replayKey = msg.fp ? tupleKey(from, msg.fp) : '';
  // Looked up at write time, not before the awaits below: the receiver may log in while the message is
  // being stored, after its replay has already listed the store (or before, and the replay sent it).
  const writeOnline = (): boolean => {
    const target = core.online.get(to);
    if (!target || target.closed) return false;
    return (!!msg.fp && !!target.replay?.inFlight.has(replayKey)) || core.send(target, msg);
  };
  // Tracked until ACKed if written: past the QoS table's bounds it is refused, not stored behind the
  // back of a receiver who is online and would not see it before its next login.
  const track = (): void => {
    if (!core.qos.enrol(msg, false, waiter)) waiter?.('lost');
  };
  if (!msg.QoS || !msg.fp) return writeOnline() ? 'sent' : 'dropped';
  const target = core.online.get(to);
  if (target && !target.closed && !core.qos.has(to, from, msg.fp) && !core.qos.hasRoom(frameBytes(msg))) return 'busy';
  const hook = core.opts.hooks.onOffline;
  if (hook) {
    if (writeOnline()) {
      track();
      return 'sent';
    }
    let ok = false;
    try {
      ok = (await settleWithin(hook(msg), core.opts.hookTimeoutMs, 'onOffline')) === true;
    } catch (err) {
      core.opts.logger.error('hook onOffline failed', err);
    }
    if (ok) core.metrics.offlineStored++;
    return ok ? 'stored' : 'dropped';
  }
  let inserted: boolean;
  try {
    if ((await core.store.count(to)) >= core.opts.maxOfflinePerUser) return 'full';
    const putStartMs = performance.now();
    inserted = await core.store.put(to, from, msg.fp, encodeFrame(msg));
    core.metrics.storeWriteLatency.observe((performance.now() - putStartMs) / 1000);
  } catch (err) {
    return storeRefused(core, to, msg.fp, err);
  }
  if (writeOnline()) {
    track();
    return 'sent';
  }
  if (inserted) core.metrics.offlineStored++;
  return 'stored';
}

/**
 * Starts handing a user who just logged in everything stored for them, oldest first, with the original
 * fingerprints. At most `replayWindow` stored messages are in flight at once; each ACK (or loss) lets the
 * next ones go, so a long backlog never floods the connection. Messages written live since the login
 * (also stored until ACKed) are skipped rather than sent twice.
 */
export async function replayStored(core: ServerCore, s: Session): Promise<void> {
  if (core.opts.hooks.onOffline) return;
  s.replay = { cursor: 0, startedMs: Date.now(), inFlight: new Set(), pumping: false, again: false };
  await pumpReplay(core, s);
}

/** Sends the next stored messages while the replay window has room. */
export async function pumpReplay(core: ServerCore, s: Session): Promise<void> {
  const r = s.replay;
  const uid = s.userId;
  if (!r || !uid) return;
  if (r.pumping) {
    r.again = true;
    return;
  }
  r.pumping = true;
  try {
    do {
      r.again = false;
      const room = core.opts.replayWindow - r.inFlight.size;
      if (room <= 0) break;
      const rows = await core.store.list(uid, r.cursor, room);
      if (rows.length === 0 && r.inFlight.size === 0) {
        s.replay = null;
        return;
      }
      for (const row of rows) {
        if (s.closed || core.online.get(uid) !== s) return;
        r.cursor = row.seq;
        if (core.qos.sentSince(uid, row.from, row.fp, r.startedMs)) continue;
        let frame: Protocal;
        try {
          frame = decodeFrame(row.frame);
        } catch {
          core.opts.logger.error(`stored message ${row.fp} for "${uid}" is unreadable; removing it`);
          await core.store.remove(uid, row.from, row.fp);
          continue;
        }
        if (!core.fits(s, frame)) {
          // Left stored (another transport may carry it) rather than let it stall the rest of the backlog.
          core.opts.logger.warn(`stored message ${row.fp} for "${uid}" is over the ${s.transport} frame limit; skipped`);
          continue;
        }
        if (!core.send(s, frame)) return;
        r.inFlight.add(tupleKey(row.from, row.fp));
        core.qos.enrol(frame, true);
        core.metrics.offlineDelivered++;
      }
    } while (r.again);
  } finally {
    r.pumping = false;
  }
}

/** A replayed message (`from`'s `fp`) was ACKed or given up on: it leaves the window and the next may go. */
export async function replaySettled(core: ServerCore, userId: string, from: string, fp: string): Promise<void> {
  const s = core.online.get(userId);
  if (s?.replay?.inFlight.delete(tupleKey(from, fp))) await pumpReplay(core, s);
}

/** The QoS daemon's retransmission: to whatever session the receiver is online with now. */
export function resendFrame(core: ServerCore, frame: Protocal): void {
  const target = frame.to ? core.online.get(frame.to) : undefined;
  core.metrics.retransmissions++;
  if (target && !target.closed) core.send(target, frame);
}

/** A put the store refused: the global quota, or (for any other failure) unavailable; logged either way. */
function storeRefused(core: ServerCore, to: string, fp: string, err: unknown): 'quota' | 'unavailable' {
  if (err instanceof OfflineStoreError && err.reason === 'quota') {
    core.opts.logger.debug(`message ${fp} to "${to}" refused: ${err.message}`);
    return 'quota';
  }
  if (err instanceof OfflineStoreError) core.opts.logger.debug(`message ${fp} to "${to}" refused: ${err.message}`);
  else core.opts.logger.error(`storing message ${fp} for "${to}" failed; refused with error ${ServerErrorCode.STORE_UNAVAILABLE}`, err);
  return 'unavailable';
}

/**
 * Stored messages that expired before their receiver ACKed them (the sender had its ACK when they were
 * stored): they are gone for good, so `onLost` hears of them, as of any other lost QoS message.
 */
export function storedExpired(core: ServerCore, messages: ExpiredMessage[]): void {
  const frames: Protocal[] = [];
  for (const m of messages) {
    try {
      frames.push(decodeFrame(m.frame));
    } catch {
      core.opts.logger.error(`an expired stored message ${m.fp} for "${m.to}" is unreadable`);
    }
  }
  if (frames.length > 0) core.safely('onLost', () => core.opts.hooks.onLost?.(frames));
}

/** The encoded size of a frame in bytes. */
export function frameBytes(p: Protocal): number {
  return Buffer.byteLength(encodeFrame(p), 'utf8');
}

function sendAck(core: ServerCore, s: Session, fp: string, from: string, to: string): void {
  core.send(s, createFrame({ type: MsgType.ACK, dataContent: fp, from, to }));
}

async function runBefore(core: ServerCore, s: Session, name: 'beforeC2S' | 'beforeC2C', p: Protocal): Promise<Protocal | null> {
  const hook = core.opts.hooks[name];
  if (!hook) return p;
  let verdict: BeforeVerdict;
  try {
    verdict = await settleWithin(hook(p, s.info()), core.opts.hookTimeoutMs, name);
  } catch (err) {
    core.opts.logger.error(`hook ${name} failed`, err);
    core.sendError(s, ServerErrorCode.SERVER_ERROR, 'the message could not be handled; retry later');
    return null;
  }
  if (verdict === false) return null;
  return verdict && typeof verdict === 'object' ? verdict : p;
}
