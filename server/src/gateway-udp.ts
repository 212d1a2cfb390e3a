import { createSocket, type RemoteInfo } from 'node:dgram';
import { decodeFrame } from '../../src/protocol';
import { decodeUtf8, type ServerCore } from './core';
import { ServerErrorCode } from './errors';
import type { Gateway } from './gateway';
import { TokenBucket, type FrameBudget } from './rate-limit';
import type { Session } from './session';

/**
 * UDP gateway: one datagram = one frame; each peer address is a session. Unlike MobileIMSDK,
 * a kicked, refused or failed UDP session really ends: the peer must log in again.
 *
 * Source addresses are trivially spoofed, so a peer the gateway has never heard from is given a session
 * only for a datagram that decodes as a frame (garbage gets no reply, so the server cannot be used to
 * reflect traffic at a forged address); when the table is full, the oldest peer that has not logged in
 * makes room, never a logged-in one; a peer's rate limit outlives its session, so ending the session
 * by flooding does not buy a fresh burst; and replies to peers that have not logged in (echo, error 301,
 * each larger than a bare request) share one budget, so forged sources cannot make it an amplifier.
 */
export async function startUdpGateway(
  core: ServerCore,
  opts: { port: number; host?: string; maxDatagramBytes: number; maxSessions: number; unauthRepliesPerSecond: number },
): Promise<Gateway> {
  const socket = createSocket({ type: 'udp4' });
  const sessions = new Map<string, Session>();
  /** Sessions not known to be logged in, oldest first: the ones that may be evicted. */
  const unproven = new Map<string, Session>();
  /** Rate-limit buckets of ended sessions, kept until they would have refilled. */
  const retired = new Map<string, { bucket: FrameBudget; untilMs: number }>();
  const rate = core.opts.rateLimit;
  const unauthReplies = new TokenBucket({ burst: opts.unauthRepliesPerSecond, perSecond: opts.unauthRepliesPerSecond });

  const retire = (key: string, s: Session): void => {
    if (!rate || !s.budget) return;
    retired.delete(key);
    retired.set(key, { bucket: s.budget, untilMs: Date.now() + (rate.burst / rate.perSecond) * 1000 });
    for (const [k, r] of retired) {
      if (retired.size <= opts.maxSessions && r.untilMs > Date.now()) break;
      retired.delete(k);
    }
  };

  const makeRoom = (): boolean => {
    if (sessions.size < opts.maxSessions) return true;
    for (const [key, s] of unproven) {
      unproven.delete(key);
      if (s.closed || s.userId) continue;
      core.opts.logger.debug(`udp ${key}: dropped to make room for a new peer (not logged in)`);
      core.closeSession(s);
      return sessions.size < opts.maxSessions;
    }
    return false;
  };

  const sessionFor = (rinfo: RemoteInfo): Session | null => {
    const key = `${rinfo.address}:${rinfo.port}`;
    const existing = sessions.get(key);
    if (existing) return existing;
    if (!makeRoom()) return null;
    const kept = retired.get(key);
    retired.delete(key);
    const s: Session = core.open(
      {
        transport: 'udp',
        remote: key,
        write(text) {
          if (sessions.get(key) !== s) return false;
          if (!s.userId && !unauthReplies.take()) return false;
          socket.send(text, rinfo.port, rinfo.address);
          return true;
        },
        close() {
          if (sessions.get(key) === s) sessions.delete(key);
          unproven.delete(key);
          retire(key, s);
          core.closed(s);
        },
      },
      kept && kept.untilMs > Date.now() ? kept.bucket : undefined,
    );
    sessions.set(key, s);
    unproven.set(key, s);
    return s;
  };

  socket.on('message', (msg, rinfo) => {
    if (!sessions.has(`${rinfo.address}:${rinfo.port}`) && !looksLikeFrame(msg, opts.maxDatagramBytes)) {
      core.metrics.badInput++;
      return;
    }
    const s = sessionFor(rinfo);
    if (!s) {
      core.metrics.badInput++;
      return;
    }
    if (msg.length > opts.maxDatagramBytes) {
      core.rejectInput(s, ServerErrorCode.FRAME_TOO_LARGE, `datagram of ${msg.length} bytes exceeds the ${opts.maxDatagramBytes}-byte limit`);
      return;
    }
    core.receiveBytes(s, msg);
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
      for (const s of [...sessions.values()]) s.link.close();
      retired.clear();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

/** Whether a datagram from an unknown peer is worth a session: within the size limit and a decodable frame. */
function looksLikeFrame(msg: Buffer, maxBytes: number): boolean {
  if (msg.length > maxBytes) return false;
  const text = decodeUtf8(msg);
  if (text === null) return false;
  try {
    decodeFrame(text);
    return true;
  } catch {
    return false;
  }
}
