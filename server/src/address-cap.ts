/** `::ffff:127.0.0.1` (an IPv4 peer of a dual-stack socket) as `127.0.0.1`. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** One counted connection: released (once) when it logs in or closes, whichever comes first. */
export interface AddressSlot {
  /** Stops counting this connection; idempotent. */
  release(): void;
}

/** The slot of a connection that is not counted. */
export const NO_SLOT: AddressSlot = { release: () => undefined };

/**
 * Connections not logged in yet, counted per source IP and shared by the WebSocket and TCP gateways:
 * at most `max` per IP (0 = no cap). An entry exists only while its count is above zero, so the map
 * never holds more entries than there are connections.
 */
export class AddressCap {
  private readonly counts = new Map<string, number>();

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`maxUnauthenticatedPerAddress must be a whole number 0 or more, got ${String(max)}`);
  }

  /** Number of source IPs with at least one counted connection. */
  get addresses(): number {
    return this.counts.size;
  }

  /** Counted connections of one source IP. */
  countOf(ip: string): number {
    return this.counts.get(plainAddress(ip)) ?? 0;
  }

  /** Counts a new connection from `ip`; null when that IP is already at the cap (refuse the connection). */
  acquire(ip: string): AddressSlot | null {
    if (this.max === 0) return NO_SLOT;
    const key = plainAddress(ip);
    const n = this.counts.get(key) ?? 0;
    if (n >= this.max) return null;
    this.counts.set(key, n + 1);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        const left = (this.counts.get(key) ?? 1) - 1;
        if (left <= 0) this.counts.delete(key);
        else this.counts.set(key, left);
      },
    };
  }
}

/** A refusal warning at most every `intervalMs` per gateway, naming how many were refused since the last. */
export function refusalLogger(warn: (msg: string) => void, what: string, max: number, intervalMs = 10_000): (ip: string) => void {
  let refused = 0;
  let lastMs = -Infinity;
  return (ip) => {
    refused++;
    const now = Date.now();
    if (now - lastMs < intervalMs) return;
    warn(`${what}: refused ${refused} connection(s) over the cap of ${max} not logged in per address (latest from ${ip})`);
    lastMs = now;
    refused = 0;
  };
}
