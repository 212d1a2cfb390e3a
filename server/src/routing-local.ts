import { SERVER_ID, type Protocal } from '../../src/protocol';
import { frameBytes, tupleKey } from './bounds';
import type { LocalSessions } from './local-sessions';
import type { PresenceEntry } from './presence';
import type { QosSendDaemon } from './qos-s2c';
import { CAP_RECEIPTS, receiptFrame } from './receipts';
import type { QosWaiter, Routing } from './routing';
import type { SessionIo } from './session-io';

/**
 * {@link Routing} to the sessions of this process. A cluster implementation keeps one of these for the
 * sessions it holds itself and calls it for the frames other nodes route here.
 */
export class LocalRouting implements Routing {
  /** It answers at once. */
  readonly settlesInOrder = true;
  constructor(
    private readonly sessions: LocalSessions,
    private readonly io: SessionIo,
    private readonly qos: QosSendDaemon,
  ) {}

  /** See {@link Routing.hasRoom}. */
  hasRoom(to: string, frame: Protocal): boolean {
    const target = this.sessions.current(to);
    if (!target || target.closed) return true;
    return (!!frame.fp && this.qos.has(to, frame.from ?? SERVER_ID, frame.fp)) || this.qos.hasRoom(frameBytes(frame), to);
  }

  /** See {@link Routing.sendData}. */
  sendData(to: string, frame: Protocal, waiter?: QosWaiter): boolean {
    const target = this.sessions.current(to);
    if (!target || target.closed) return false;
    // A replayed copy of this very message is on its way: it is not written twice.
    const inFlight = !!frame.fp && !!target.replay?.inFlight.has(tupleKey(frame.from ?? SERVER_ID, frame.fp));
    if (!inFlight && !this.io.send(target, frame)) return false;
    // Tracked until ACKed: past the QoS table's bounds it is refused (the stored copy stays).
    if (frame.QoS && frame.fp && !this.qos.enrol(frame, false, waiter)) waiter?.('lost');
    return true;
  }

  /** See {@link Routing.sendReceipt}. */
  sendReceipt(sender: string, receiver: string, fp: string, atMs: number): boolean {
    const s = this.sessions.current(sender);
    if (!s || s.closed) return false;
    // A session that did not ask (a MobileIMSDK client) must never see a type-60 frame: dropped. One
    // that could not be written (a closing or too slow connection) is the caller's to keep.
    return s.caps & CAP_RECEIPTS ? this.io.send(s, receiptFrame(sender, receiver, fp, atMs)) : true;
  }

  /** See {@link Routing.kickUser}. */
  kickUser(userId: string, code: number, reason?: string): boolean {
    const s = this.sessions.current(userId);
    if (!s) return false;
    this.io.kickSession(s, userId, code, reason);
    return true;
  }

  /** See {@link Routing.endSession}. */
  endSession(at: PresenceEntry, userId: string, kickCode: number | null): void {
    const s = this.sessions.get(at.session);
    if (!s) return;
    if (kickCode === null) this.io.closeSession(s);
    else this.io.kickSession(s, userId, kickCode);
  }

  /** Nothing to release. */
  close(): void {}
}
