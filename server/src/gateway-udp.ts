import { createSocket, type RemoteInfo } from 'node:dgram';
import { decodeFrame, encodeFrame, MsgType, type Protocal } from '../../src/protocol';
import { decodeUtf8, type ServerCore } from './core';
import { ServerErrorCode } from './errors';
import type { Gateway } from './gateway';
import { CAP_RECEIPT_IN_ACK } from './receipts';
import { TokenBucket, type FrameBudget } from './rate-limit';
import type { Session } from './session';
import { UdpPeerTable, type PeerRank } from './udp-peer-table';

/** What the UDP gateway is given: where to listen and its bounds (see ServerOptions.udp). */
export interface UdpGatewayOptions {
  port: number;
  host?: string;
  maxDatagramBytes: number;
  maxSessions: number;
  maxSessionsPerAddress: number;
  unauthRepliesPerSecond: number;
}

/** QoS fingerprints remembered per unproven peer: an ACK of one proves the peer receives at its address. */
const MAX_PROBE_FPS = 16;

/** What the gateway knows of one peer address beyond its session: kept a while after the session ends. */
interface PeerState {
  budget?: FrameBudget;
  /** Bytes the peer may still be sent before it has proven its address (received minus sent, capped). */
  credit: number;
  /** The peer answered something the server sent it: it really receives at this address. */
  proven: boolean;
  /** Keep-alives heard while unproven; the second proves the address. */
  keepAlives: number;
  /** QoS frames sent to it while unproven, by fp. */
  probes: Set<string>;
  /** Something was not sent for want of credit: hand the stored messages over again once proven. */
  withheld: boolean;
}

/** A peer with a live session. */
interface Peer extends PeerState {
  readonly ip: string;
  readonly session: Session;
  rank(): PeerRank;
}

/**
 * UDP gateway: one datagram = one frame; each peer address is a session. Unlike MobileIMSDK, a kicked,
 * refused or failed UDP session really ends: the peer must log in again.
 *
 * Source addresses are trivially forged, so:
 * - a peer never heard from gets a session only for a datagram that decodes as a frame (garbage gets no
 *   reply, so the server cannot be used to reflect traffic at a forged address);
 * - the peer table never refuses a newcomer: one source IP holds at most `maxSessionsPerAddress` peers,
 *   and a newcomer takes the place of the least recently heard peer, not-logged-in first, then logged-in
 *   but unproven, then proven (see {@link UdpPeerTable});
 * - until a peer has answered something the server sent it (an ACK of a QoS frame the server sent it, or
 *   a second keep-alive), the server sends it at most as many bytes as it has received from it, so
 *   a forged source gets no amplification; messages held back meanwhile stay stored and are handed over
 *   as soon as the peer proves its address;
 * - a peer's rate limit, credit and proof outlive its session, so ending the session buys nothing;
 * - replies to peers that have not logged in (echo, error 301) share one budget per second.
 */
export async function startUdpGateway(core: ServerCore, opts: UdpGatewayOptions): Promise<Gateway> {
  const socket = createSocket({ type: 'udp4' });
  const peers = new UdpPeerTable<Peer>(opts.maxSessions, Math.min(opts.maxSessionsPerAddress, opts.maxSessions));
  /** State of peers whose session ended, oldest first, kept for `retainMs`. */
  const retired = new Map<string, { state: PeerState; untilMs: number }>();
  const rate = core.opts.rateLimit;
  const retainMs = Math.max(core.opts.udpExpiryMs, rate ? (rate.burst / rate.perSecond) * 1000 : 0);
  const maxCredit = 4 * opts.maxDatagramBytes;
  const unauthReplies = new TokenBucket({ burst: opts.unauthRepliesPerSecond, perSecond: opts.unauthRepliesPerSecond });
  const log = (key: string, what: string): void => core.opts.logger.debug(`udp ${key}: ${what}`);

  const retire = (key: string, p: Peer): void => {
    const { budget, credit, proven, keepAlives, probes, withheld } = p;
    retired.delete(key);
    retired.set(key, { state: { budget, credit, proven, keepAlives, probes, withheld }, untilMs: Date.now() + retainMs });
    for (const [k, r] of retired) {
      if (retired.size <= opts.maxSessions && r.untilMs > Date.now()) break;
      retired.delete(k);
    }
  };

  /** After the frame that proved the address has been handled: hand over again what was held back. */
  const afterProof = (key: string, p: Peer): void => {
    const s = p.session;
    if (!p.withheld || !s.userId || core.sessions.current(s.userId) !== s) return;
    p.withheld = false;
    // It stayed stored; queued behind the proving frame, so an ACK settles its message before the replay.
    core.schedule(s, () => core.replay(s).catch((err: unknown) => core.opts.logger.error(`udp ${key}: replay failed`, err)));
  };

  const write = (key: string, rinfo: RemoteInfo, p: Peer, text: string): boolean => {
    if (peers.get(key) !== p) return false;
    if (!p.proven) {
      if (Buffer.byteLength(text, 'utf8') > p.credit) {
        const small = shrinkReply(text);
        if (small !== null) {
          text = small;
          // A login response without our keys grants nothing the client can see, so it reads no receipt in
          // an ACK (src/client.ts): the receipts go as type-60 frames, which it reads without a grant.
          if (tryDecode(small)?.type === MsgType.LOGIN_RESPONSE) p.session.caps &= ~CAP_RECEIPT_IN_ACK;
        }
      }
      const bytes = Buffer.byteLength(text, 'utf8');
      if (bytes > p.credit) {
        p.withheld = true;
        log(key, `held back a ${bytes}-byte frame: the address has sent ${p.credit} bytes more than it was sent and has not proven it receives`);
        return false;
      }
      if (!p.session.userId && !unauthReplies.take()) return false;
      p.credit -= bytes;
      const f = tryDecode(text);
      if (f && f.type === MsgType.DATA && f.QoS && f.fp && p.probes.size < MAX_PROBE_FPS) p.probes.add(f.fp);
    }
    socket.send(text, rinfo.port, rinfo.address);
    return true;
  };

  const admit = (key: string, rinfo: RemoteInfo): Peer => {
    for (let victim = peers.victimFor(rinfo.address); victim; victim = peers.victimFor(rinfo.address)) {
      log(victim[0], `dropped (rank ${victim[1].rank()}) to make room for ${key}`);
      core.io.closeSession(victim[1].session);
      peers.remove(victim[0]);
    }
    const kept = retired.get(key);
    retired.delete(key);
    const state: PeerState =
      kept && kept.untilMs > Date.now() ? kept.state : { credit: 0, proven: false, keepAlives: 0, probes: new Set(), withheld: false };
    let peer!: Peer;
    const session = core.open(
      {
        transport: 'udp',
        remote: key,
        write: (text) => write(key, rinfo, peer, text),
        close() {
          if (peers.get(key) === peer) peers.remove(key);
          retire(key, peer);
          core.closed(session);
        },
      },
      state.budget,
    );
    peer = {
      ...state,
      budget: session.budget ?? undefined,
      ip: rinfo.address,
      session,
      rank: () => (!session.userId ? 0 : peer.proven ? 2 : 1),
    };
    peers.add(key, peer);
    return peer;
  };

  /** Counts what an unproven peer sent: its bytes as credit; true when it answers what it was sent. */
  const proves = (p: Peer, msg: Buffer): boolean => {
    p.credit = Math.min(maxCredit, p.credit + msg.length);
    const f = tryDecode(decodeUtf8(msg));
    if (!f) return false;
    if (f.type === MsgType.ACK && f.dataContent && p.probes.has(f.dataContent)) return true;
    return f.type === MsgType.KEEP_ALIVE && !!p.session.userId && ++p.keepAlives >= 2;
  };

  socket.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let p = peers.get(key);
    if (!p) {
      if (msg.length > opts.maxDatagramBytes || !tryDecode(decodeUtf8(msg))) {
        core.metrics.badInput++;
        return;
      }
      p = admit(key, rinfo);
    }
    const proof = !p.proven && proves(p, msg);
    if (proof) {
      p.proven = true;
      p.probes.clear();
      log(key, 'address proven: it answered what it was sent');
    }
    peers.heard(key);
    if (msg.length > opts.maxDatagramBytes) {
      core.io.rejectInput(p.session, ServerErrorCode.FRAME_TOO_LARGE, `datagram of ${msg.length} bytes exceeds the ${opts.maxDatagramBytes}-byte limit`);
      return;
    }
    core.receiveBytes(p.session, msg);
    if (proof) afterProof(key, p);
  });
  socket.on('error', (err) => core.opts.logger.warn(`udp: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(opts.port, opts.host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return {
    port: socket.address().port,
    close: async () => {
      for (const p of peers.values()) p.session.link.close();
      retired.clear();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

/**
 * The smallest form of a reply that still does its job, or null when it has none: an error frame (type 52)
 * without its `errorMsg` text (error 301 quotes the whole refused frame, so it is always larger than what
 * it answers, yet it is what tells a MobileIMSDK client to log in again), and a login response (type 50)
 * with only MobileIMSDK's keys (`code`, `firstLoginTime`; extension keys such as `caps` make it larger than
 * a login with a short token). Both stay frames MobileIMSDK clients read as before.
 */
export function shrinkReply(text: string): string | null {
  const f = tryDecode(text);
  if (!f || !f.dataContent || (f.type !== MsgType.ERROR && f.type !== MsgType.LOGIN_RESPONSE)) return null;
  try {
    const body = JSON.parse(f.dataContent) as Record<string, unknown>;
    const small = f.type === MsgType.ERROR ? { ...body, errorMsg: '' } : { code: body.code, firstLoginTime: body.firstLoginTime };
    return encodeFrame({ ...f, dataContent: JSON.stringify(small) });
  } catch {
    return null;
  }
}

/** Decodes a frame's text; null when it is not text or not a frame. */
function tryDecode(text: string | null): Protocal | null {
  if (text === null) return null;
  try {
    return decodeFrame(text);
  } catch {
    return null;
  }
}
