/** Where one message stands, from the sender's promise and the receivers' `message` events. */
interface Entry {
  from: string;
  to: string;
  acked: boolean;
  lost: boolean;
  lostEvent: boolean;
  deliveries: number;
  wrongReceiver: number;
}

/** The end state of every message, as the fault tests report and assert it. */
export interface LedgerCounts {
  sent: number;
  /** Delivered exactly once to the right receiver and never reported lost. */
  delivered: number;
  /** Reported lost to the sender and never delivered. */
  lost: number;
  /** Extra deliveries shown to a receiving application, beyond the first. */
  duplicates: number;
  /** Neither delivered nor reported lost (including any send still unsettled). */
  silent: number;
  /** Reported lost to the sender, yet delivered: the sender was told something false. */
  lostButDelivered: number;
  /** Sender's promise resolved (ACK) but nobody got it: counted in `silent` too. */
  ackedNotDelivered: number;
  /** Sends still neither resolved nor rejected. */
  unsettled: number;
  /** Promise rejections without a matching `lost` event, or the reverse. */
  lostEventMismatch: number;
  /** Deliveries to a client other than the addressee. */
  wrongReceiver: number;
}

/** Books every message by a unique content id, so the outcome of each one can be checked. */
export class Ledger {
  private readonly entries = new Map<string, Entry>();
  /** Message ids whose promise has settled either way. */
  settled = 0;

  /** Records a send before it is attempted. */
  sent(id: string, from: string, to: string): void {
    this.entries.set(id, { from, to, acked: false, lost: false, lostEvent: false, deliveries: 0, wrongReceiver: 0 });
  }

  /** The sender's promise resolved. */
  acked(id: string): void {
    const e = this.get(id);
    e.acked = true;
    this.settled++;
  }

  /** The sender's promise rejected. */
  rejected(id: string): void {
    const e = this.get(id);
    e.lost = true;
    this.settled++;
  }

  /** The sender's client emitted `lost` for the message. */
  lostEvent(id: string): void {
    this.get(id).lostEvent = true;
  }

  /** A receiving application got the message. */
  received(id: string, by: string): void {
    const e = this.get(id);
    if (e.to !== by) e.wrongReceiver++;
    else e.deliveries++;
  }

  /** True once every send has settled and every acknowledged one has reached its receiver. */
  quiet(): boolean {
    if (this.settled < this.entries.size) return false;
    for (const e of this.entries.values()) if (e.acked && e.deliveries === 0) return false;
    return true;
  }

  /** Tallies every message, optionally only those whose id matches `filter`. */
  counts(filter: (id: string) => boolean = () => true): LedgerCounts {
    const c: LedgerCounts = {
      sent: 0,
      delivered: 0,
      lost: 0,
      duplicates: 0,
      silent: 0,
      lostButDelivered: 0,
      ackedNotDelivered: 0,
      unsettled: 0,
      lostEventMismatch: 0,
      wrongReceiver: 0,
    };
    for (const [id, e] of this.entries) {
      if (!filter(id)) continue;
      c.sent++;
      c.wrongReceiver += e.wrongReceiver;
      if (e.deliveries > 1) c.duplicates += e.deliveries - 1;
      if (e.lost !== e.lostEvent) c.lostEventMismatch++;
      if (!e.acked && !e.lost) c.unsettled++;
      if (e.lost && e.deliveries > 0) c.lostButDelivered++;
      else if (e.lost) c.lost++;
      else if (e.deliveries > 0) c.delivered++;
      else {
        c.silent++;
        if (e.acked) c.ackedNotDelivered++;
      }
    }
    return c;
  }

  private get(id: string): Entry {
    const e = this.entries.get(id);
    if (!e) throw new Error(`unknown message id ${id}`);
    return e;
  }
}
