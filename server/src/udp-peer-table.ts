/**
 * How much a UDP peer is worth keeping, lowest evicted first: 0 = not logged in, 1 = logged in but its
 * address not proven to receive, 2 = logged in and proven.
 */
export type PeerRank = 0 | 1 | 2;

/** What the table needs of a peer: its source IP and its current rank. */
export interface RankedPeer {
  readonly ip: string;
  rank(): PeerRank;
}

/** One rank's peers, least recently heard first (a Map keeps insertion order). */
type Ranks<P> = [Map<string, P>, Map<string, P>, Map<string, P>];

interface Filed<P> {
  peer: P;
  rank: PeerRank;
}

/**
 * The UDP gateway's peers, keyed by `ip:port`, with two bounds: `maxPeers` in all and `maxPerAddress`
 * from one source IP. A newcomer never finds the door shut: it takes the place of the least recently heard
 * peer of the lowest rank, among its own IP's peers when that IP is at its share, else among all.
 * A forged flood therefore only ever displaces peers that have not logged in or not proven their address
 * while any exist, and one forged IP can only churn its own share.
 *
 * Ranks only rise during a session (login, then proof), so a peer filed under a lower rank is re-filed
 * lazily when it is found there: every operation is O(1) amortised.
 */
export class UdpPeerTable<P extends RankedPeer> {
  private readonly filed = new Map<string, Filed<P>>();
  private readonly all: Ranks<P> = [new Map(), new Map(), new Map()];
  private readonly byIp = new Map<string, { count: number; ranks: Ranks<P> }>();

  constructor(
    readonly maxPeers: number,
    readonly maxPerAddress: number,
  ) {}

  /** Number of peers held. */
  get size(): number {
    return this.filed.size;
  }

  /** Number of peers held for one source IP. */
  countOf(ip: string): number {
    return this.byIp.get(ip)?.count ?? 0;
  }

  /** Every peer held. */
  values(): P[] {
    return [...this.filed.values()].map((f) => f.peer);
  }

  /** The peer at `key`, if held. */
  get(key: string): P | undefined {
    return this.filed.get(key)?.peer;
  }

  /** Adds a peer (the caller has made room with {@link victimFor}) as the most recently heard of its rank. */
  add(key: string, peer: P): void {
    this.remove(key);
    let ip = this.byIp.get(peer.ip);
    if (!ip) this.byIp.set(peer.ip, (ip = { count: 0, ranks: [new Map(), new Map(), new Map()] }));
    ip.count++;
    this.file(key, peer, peer.rank());
  }

  /** Marks a peer as just heard from: it moves behind every other peer of its (current) rank. */
  heard(key: string): void {
    const f = this.filed.get(key);
    if (!f) return;
    this.unfile(key, f);
    this.file(key, f.peer, f.peer.rank());
  }

  /** Forgets a peer; false when it was not held. */
  remove(key: string): boolean {
    const f = this.filed.get(key);
    if (!f) return false;
    this.unfile(key, f);
    this.filed.delete(key);
    const ip = this.byIp.get(f.peer.ip);
    if (ip && --ip.count === 0) this.byIp.delete(f.peer.ip);
    return true;
  }

  /**
   * The peer that must give way for a newcomer from `ip`, or null when there is room: the least recently
   * heard of the lowest rank among that IP's peers when the IP holds its share, else among all peers
   * when the table is full.
   */
  victimFor(ip: string): [string, P] | null {
    const own = this.byIp.get(ip);
    if (own && own.count >= this.maxPerAddress) return this.lowest(own.ranks);
    if (this.filed.size >= this.maxPeers) return this.lowest(this.all);
    return null;
  }

  private lowest(ranks: Ranks<P>): [string, P] | null {
    for (let r = 0; r < 3; r++) {
      const rank = ranks[r];
      for (let first = rank.entries().next(); !first.done; first = rank.entries().next()) {
        const [key, peer] = first.value;
        const now = peer.rank();
        if (now === r) return [key, peer];
        // Its rank changed since it was filed (a login, a proof): re-file it where it belongs.
        this.unfile(key, this.filed.get(key) as Filed<P>);
        this.file(key, peer, now);
        if (now < r) return this.lowest(ranks);
      }
    }
    return null;
  }

  private file(key: string, peer: P, rank: PeerRank): void {
    this.filed.set(key, { peer, rank });
    this.all[rank].set(key, peer);
    this.byIp.get(peer.ip)?.ranks[rank].set(key, peer);
  }

  private unfile(key: string, f: Filed<P>): void {
    this.all[f.rank].delete(key);
    this.byIp.get(f.peer.ip)?.ranks[f.rank].delete(key);
  }
}
