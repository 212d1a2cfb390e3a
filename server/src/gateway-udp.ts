import { createSocket, type RemoteInfo } from 'node:dgram';
import type { ServerCore } from './core';
import { ServerErrorCode } from './errors';
import type { Gateway } from './gateway';
import type { Session } from './session';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * UDP gateway (spec §1.3): one datagram = one frame; each peer address is a session. Unlike MobileIMSDK,
 * a kicked, refused or failed UDP session really ends: the peer must log in again.
 */
export async function startUdpGateway(
  core: ServerCore,
  opts: { port: number; host?: string; maxDatagramBytes: number; maxSessions: number },
): Promise<Gateway> {
  const socket = createSocket({ type: 'udp4' });
  const sessions = new Map<string, Session>();
  const sessionFor = (rinfo: RemoteInfo): Session | null => {
    const key = `${rinfo.address}:${rinfo.port}`;
    const existing = sessions.get(key);
    if (existing) return existing;
    if (sessions.size >= opts.maxSessions) return null;
    const s: Session = core.open({
      transport: 'udp',
      remote: key,
      write(text) {
        if (!sessions.has(key)) return false;
        socket.send(text, rinfo.port, rinfo.address);
        return true;
      },
      close() {
        if (sessions.get(key) === s) sessions.delete(key);
        core.closed(s);
      },
    });
    sessions.set(key, s);
    return s;
  };
  socket.on('message', (msg, rinfo) => {
    const s = sessionFor(rinfo);
    if (!s) {
      core.metrics.badInput++;
      return;
    }
    if (msg.length > opts.maxDatagramBytes) {
      core.rejectInput(s, ServerErrorCode.FRAME_TOO_LARGE, `datagram of ${msg.length} bytes exceeds the ${opts.maxDatagramBytes}-byte limit`);
      return;
    }
    let text: string;
    try {
      text = utf8.decode(msg);
    } catch {
      core.rejectInput(s, ServerErrorCode.BAD_FRAME, 'datagram is not valid UTF-8');
      return;
    }
    core.receive(s, text);
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
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}
