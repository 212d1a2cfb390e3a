import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { helpText, parseCli } from '../../server/src/cli-args';
import { createServer, silentLogger } from '../../server/src/index';
import { UdpPeerTable, type PeerRank } from '../../server/src/udp-peer-table';
import { shrinkReply } from '../../server/src/gateway-udp';
import { createFrame, decodeFrame, encodeFrame } from '../../src/protocol';
import { dataFrame, login, loginFrame, UdpClient, useServers, type Frame } from './helpers';

/**
 * The UDP peer table against forged sources, with real sockets. Loopback is all of 127.0.0.0/8, so a
 * socket bound to 127.0.0.2, 127.0.0.3 … stands for another source address.
 */
const { setup, track } = useServers();

/** A raw UDP client bound to `ip` that counts the bytes it sends and receives. */
async function peerAt(serverPort: number, ip = '127.0.0.1'): Promise<UdpClient & { bytesOut: number; bytesIn: number }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, ip, () => resolve()));
  const c = track(new UdpClient(socket, serverPort)) as UdpClient & { bytesOut: number; bytesIn: number };
  c.bytesOut = 0;
  c.bytesIn = 0;
  socket.on('message', (msg) => (c.bytesIn += msg.length));
  const send = c.sendText.bind(c);
  c.sendText = (text: string) => {
    c.bytesOut += Buffer.byteLength(text);
    send(text);
  };
  return c;
}

function keepAlive(userId: string): Frame {
  return { type: 1, dataContent: '{}', from: userId, to: '0' };
}

/** Logs in and sends the two keep-alives that prove the address receives. */
async function loginAndProve(c: UdpClient, userId: string): Promise<void> {
  expect((await login(c, userId)).code).toBe(0);
  for (let i = 0; i < 2; i++) {
    c.send(keepAlive(userId));
    await c.nextOfType(51);
  }
}

const settle = (ms = 100) => new Promise((r) => setTimeout(r, ms));

describe('UDP peers per source address', () => {
  it('lets one source IP hold at most its share of the table, so another address still gets in', async () => {
    const { server } = await setup({ udp: { port: 0, host: '127.0.0.1', maxSessions: 4, maxSessionsPerAddress: 2 } });
    const port = server.ports.udp!;
    const flood = [];
    for (let i = 0; i < 6; i++) {
      const c = await peerAt(port, '127.0.0.2');
      c.send(loginFrame(`forged-${i}`));
      await c.nextOfType(50);
      flood.push(c);
    }
    expect(server.onlineUsers().filter((u) => u.startsWith('forged-')).sort()).toEqual(['forged-4', 'forged-5']);
    expect(server.metrics().connections.udp).toBe(2);
    const other = await peerAt(port, '127.0.0.3');
    expect((await login(other, 'other')).code).toBe(0);
    expect(server.onlineUsers()).toContain('other');
  });

  it('within one address, gives way among its own peers: not logged in first, then unproven, proven last', async () => {
    const { server } = await setup({ udp: { port: 0, host: '127.0.0.1', maxSessions: 100, maxSessionsPerAddress: 3 } });
    const port = server.ports.udp!;
    const proven = await peerAt(port, '127.0.0.4');
    await loginAndProve(proven, 'proven');
    const unproven = await peerAt(port, '127.0.0.4');
    expect((await login(unproven, 'unproven')).code).toBe(0);
    const idle = await peerAt(port, '127.0.0.4');
    idle.send({ type: 5, dataContent: 'hi', pad: 'p'.repeat(200) });
    await idle.nextOfType(53);
    const opened = server.metrics().connectionsOpened;
    // The newcomer takes the place of the peer that has not logged in, although it was heard last.
    const newcomer = await peerAt(port, '127.0.0.4');
    expect((await login(newcomer, 'newcomer')).code).toBe(0);
    expect(server.onlineUsers().sort()).toEqual(['newcomer', 'proven', 'unproven']);
    // Then the least recently heard unproven one; the proven one stays.
    const next = await peerAt(port, '127.0.0.4');
    expect((await login(next, 'next')).code).toBe(0);
    expect(server.onlineUsers().sort()).toEqual(['newcomer', 'next', 'proven']);
    expect(server.metrics().connectionsOpened).toBe(opened + 2);
    proven.send(keepAlive('proven'));
    expect((await proven.nextOfType(51)).to).toBe('proven');
  });
});

describe('a full UDP table', () => {
  it('never refuses a newcomer: the least recently heard not-logged-in peer goes first, then unproven, then proven', async () => {
    const { server } = await setup({ udp: { port: 0, host: '127.0.0.1', maxSessions: 3 } });
    const port = server.ports.udp!;
    const a = await peerAt(port, '127.0.0.5');
    await loginAndProve(a, 'a');
    const b = await peerAt(port, '127.0.0.6');
    expect((await login(b, 'b')).code).toBe(0);
    const n1 = await peerAt(port, '127.0.0.7');
    n1.send({ type: 5, dataContent: 'n1', pad: 'p'.repeat(200) });
    await n1.nextOfType(53);
    const c = await peerAt(port, '127.0.0.8');
    expect((await login(c, 'c')).code).toBe(0);
    expect(server.onlineUsers().sort()).toEqual(['a', 'b', 'c']);
    // Every peer is logged in now: b is the least recently heard unproven one.
    const d = await peerAt(port, '127.0.0.9');
    expect((await login(d, 'd')).code).toBe(0);
    expect(server.onlineUsers().sort()).toEqual(['a', 'c', 'd']);
    await loginAndProve(c, 'c');
    await loginAndProve(d, 'd');
    // Only proven peers left: the least recently heard of them (a) makes room.
    const e = await peerAt(port, '127.0.0.10');
    expect((await login(e, 'e')).code).toBe(0);
    expect(server.onlineUsers().sort()).toEqual(['c', 'd', 'e']);
  });
});

describe('no amplification before a peer proves its address', () => {
  it('answers a 10-byte echo from an unknown address with nothing, and never more bytes than it was sent', async () => {
    const { server } = await setup();
    const u = await peerAt(server.ports.udp!, '127.0.0.11');
    u.sendText('{"type":5}');
    await settle(150);
    expect(u.bytesIn).toBe(0);
    // A bare login (50 bytes) is answered once the login attempts have paid for the 142-byte response.
    const bare = JSON.stringify({ type: 0, dataContent: JSON.stringify({ loginUserId: 'bare' }) });
    for (let i = 0; i < 4 && u.frames.length === 0; i++) {
      u.sendText(bare);
      await settle(100);
      expect(u.bytesIn).toBeLessThanOrEqual(u.bytesOut);
    }
    expect(u.frames.map((f) => f.type)).toEqual([50]);
    // Echoes and one keep-alive (one alone proves nothing) stay within what the peer sent.
    for (let i = 0; i < 3; i++) u.sendText('{"type":5}');
    u.sendText(JSON.stringify({ type: 1, dataContent: '{}', from: 'bare', to: '0' }));
    await settle(100);
    expect(u.bytesIn).toBeLessThanOrEqual(u.bytesOut);
  });

  it('holds a stored backlog back from a forged login, and hands it over once the peer proves its address', async () => {
    const { server } = await setup();
    for (let i = 0; i < 5; i++) expect((await server.sendToUser('bob', `stored ${i} ${'x'.repeat(300)}`)).status).toBe('stored');
    const u = await peerAt(server.ports.udp!, '127.0.0.12');
    expect((await login(u, 'bob')).code).toBe(0);
    await settle(200);
    expect(u.frames.map((f) => f.type)).toEqual([50]);
    expect(u.bytesIn).toBeLessThanOrEqual(u.bytesOut);
    // A live message meanwhile is stored too, not lost.
    expect((await server.sendToUser('bob', 'live while unproven')).status).toBe('stored');
    for (let i = 0; i < 2; i++) u.send(keepAlive('bob'));
    const got: string[] = [];
    for (let i = 0; i < 6; i++) {
      const f = await u.nextOfType(2);
      got.push((f.dataContent as string).slice(0, 19));
      u.send({ type: 4, dataContent: f.fp, from: 'bob', to: '0' });
    }
    expect(got).toEqual(['stored 0 xxxxxxxxxx', 'stored 1 xxxxxxxxxx', 'stored 2 xxxxxxxxxx', 'stored 3 xxxxxxxxxx', 'stored 4 xxxxxxxxxx', 'live while unproven']);
    await expect.poll(() => server.metrics().offlinePending).toBe(0);
  });

  it('proves an address by an ACK of a QoS frame it was sent, then hands over what it held back', async () => {
    const { server, ws } = await setup();
    const big = 'z'.repeat(1500);
    expect((await server.sendToUser('carol', big)).status).toBe('stored');
    const u = await peerAt(server.ports.udp!, '127.0.0.13');
    expect((await login(u, 'carol')).code).toBe(0);
    // A 600-byte C2S message earns the credit for a small QoS message, not for the stored 1500 bytes.
    u.send(dataFrame('carol', '0', 'y'.repeat(600), 'c2s-1'));
    await u.nextOfType(4);
    const w = await ws();
    await login(w, 'dave');
    w.send(dataFrame('dave', 'carol', 'hi', 'probe-1'));
    const probe = await u.nextOfType(2);
    expect(probe.dataContent).toBe('hi');
    expect(await u.quiet(150)).toEqual([]);
    expect(u.bytesIn).toBeLessThanOrEqual(u.bytesOut);
    u.send({ type: 4, dataContent: probe.fp, from: 'carol', to: 'dave' });
    const held = await u.nextOfType(2);
    expect(held.dataContent).toBe(big);
    u.send({ type: 4, dataContent: held.fp, from: 'carol', to: '0' });
    await expect.poll(() => server.metrics().offlinePending).toBe(0);
    expect((await u.quiet(100)).filter((f) => f.type === 2)).toEqual([]);
  });

  it('hands a replayed message over again once the peer proves its address, when its retransmission was held back until it was given up', async () => {
    const { server } = await setup({ qos: { checkIntervalMs: 100, resendAfterMs: 50, maxRetries: 1 } });
    const text = 'm'.repeat(600);
    expect((await server.sendToUser('erin', text)).status).toBe('stored');
    const u = await peerAt(server.ports.udp!, '127.0.0.14');
    // A login long enough to earn the credit for the stored message once, not for its retransmission.
    u.send(loginFrame('erin', 0, 't'.repeat(1000)));
    expect(JSON.parse((await u.nextOfType(50)).dataContent as string).code).toBe(0);
    expect((await u.nextOfType(2)).dataContent).toBe(text);
    // Its ACK is lost; its retransmission is held back for want of credit, and it is given up.
    await expect.poll(() => server.metrics().lost).toBe(1);
    expect(u.bytesIn).toBeLessThanOrEqual(u.bytesOut);
    for (let i = 0; i < 2; i++) u.send(keepAlive('erin'));
    const again = await u.nextOfType(2, 2000);
    expect(again.dataContent).toBe(text);
    u.send({ type: 4, dataContent: again.fp, from: 'erin', to: '0' });
    await expect.poll(() => server.metrics().offlinePending).toBe(0);
  });
});

describe('a legitimate client during a forged-login flood', () => {
  it('logs in, proves its address and chats while forged logins from many addresses churn the table', async () => {
    const { server, ws } = await setup({ udp: { port: 0, host: '127.0.0.1', maxSessions: 64, maxSessionsPerAddress: 8 } });
    const port = server.ports.udp!;
    const forgers = [];
    for (let ip = 20; ip < 28; ip++) for (let k = 0; k < 16; k++) forgers.push(await peerAt(port, `127.0.0.${ip}`));
    let n = 0;
    let flooding = true;
    const flood = (async () => {
      while (flooding) {
        for (let k = 0; k < 16; k++) {
          const f = forgers[n++ % forgers.length];
          f.send(loginFrame(`forged-${n}`));
        }
        await settle(20);
      }
    })();
    await settle(300);
    expect(server.metrics().connections.udp).toBe(64);
    const java = await peerAt(port, '127.0.0.1');
    await loginAndProve(java, 'java');
    const w = await ws();
    await login(w, 'web');
    for (let i = 0; i < 10; i++) {
      java.send(dataFrame('java', 'web', `to web ${i}`, `j-${i}`));
      expect((await java.nextOfType(4)).dataContent).toBe(`j-${i}`);
      w.send(dataFrame('web', 'java', `to java ${i}`, `w-${i}`));
      const got = await java.nextOfType(2);
      expect(got.dataContent).toBe(`to java ${i}`);
      java.send({ type: 4, dataContent: got.fp, from: 'java', to: 'web' });
      await settle(30);
    }
    flooding = false;
    await flood;
    expect(java.frames.filter((f) => f.type === 52 || f.type === 54)).toEqual([]);
    expect(server.onlineUsers()).toContain('java');
    expect(server.metrics().connections.udp).toBeLessThanOrEqual(64);
    // Every forger's login got its answer: the table turned over instead of refusing newcomers.
    const answered = forgers.filter((f) => f.frames.some((x) => x.type === 50)).length;
    expect(answered).toBe(forgers.length);
  });
});

describe('UDP and rate-limit options', () => {
  it('reads the peer-table and control-budget flags, and validates the options up front', async () => {
    const c = parseCli(['--udp-max-peers', '500', '--rate-control-burst', '50'], { IM_UDP_MAX_PEERS_PER_ADDRESS: '20', IM_RATE_CONTROL_PER_SECOND: '5' });
    expect(c.options.udp).toEqual({ port: 7901, host: undefined, maxSessions: 500, maxSessionsPerAddress: 20 });
    expect(c.options.rateLimit).toEqual({ burst: 200, perSecond: 100, controlBurst: 50, controlPerSecond: 5 });
    expect(() => parseCli(['--udp-max-peers-per-address', '0'], {})).toThrow(/--udp-max-peers-per-address/);
    const text = helpText();
    for (const s of ['--udp-max-peers', 'IM_UDP_MAX_PEERS_PER_ADDRESS', '--rate-control-burst', 'IM_RATE_CONTROL_PER_SECOND']) expect(text).toContain(s);
    await expect(createServer({ udp: { port: 0, maxSessionsPerAddress: 0 }, logger: silentLogger })).rejects.toThrow(/udp.maxSessionsPerAddress/);
    await expect(createServer({ udp: { port: 0, maxSessions: 1.5 }, logger: silentLogger })).rejects.toThrow(/udp.maxSessions/);
    await expect(createServer({ rateLimit: { burst: 1, perSecond: 1, controlBurst: 0 }, logger: silentLogger })).rejects.toThrow(/rateLimit.controlBurst/);
  });
});

describe('UdpPeerTable', () => {
  const peer = (ip: string, rank: PeerRank = 0) => ({ ip, r: rank, rank(): PeerRank { return this.r; } });

  it('picks the least recently heard of the lowest rank, re-filing peers whose rank rose since', () => {
    const t = new UdpPeerTable<ReturnType<typeof peer>>(3, 3);
    const a = peer('1.1.1.1');
    const b = peer('1.1.1.1');
    const c = peer('1.1.1.1');
    t.add('a', a);
    t.add('b', b);
    t.add('c', c);
    expect(t.victimFor('2.2.2.2')?.[0]).toBe('a');
    a.r = 2;
    b.r = 1;
    expect(t.victimFor('2.2.2.2')?.[0]).toBe('c');
    t.heard('c');
    c.r = 1;
    expect(t.victimFor('2.2.2.2')?.[0]).toBe('b');
    t.heard('b');
    expect(t.victimFor('2.2.2.2')?.[0]).toBe('c');
    t.remove('c');
    expect(t.victimFor('2.2.2.2')).toBeNull();
    expect(t.size).toBe(2);
  });

  it('holds each address to its share and forgets an address with its last peer', () => {
    const t = new UdpPeerTable<ReturnType<typeof peer>>(10, 2);
    t.add('x1', peer('9.9.9.9', 1));
    t.add('x2', peer('9.9.9.9', 0));
    t.add('y1', peer('8.8.8.8', 0));
    expect(t.victimFor('9.9.9.9')?.[0]).toBe('x2');
    expect(t.victimFor('8.8.8.8')).toBeNull();
    t.remove('x2');
    t.remove('x1');
    expect(t.countOf('9.9.9.9')).toBe(0);
    expect(t.victimFor('9.9.9.9')).toBeNull();
    expect(t.values().map((p) => p.ip)).toEqual(['8.8.8.8']);
  });
});

describe('shrinkReply', () => {
  it('drops an error text and login-response extension keys, keeping what MobileIMSDK clients read', () => {
    const error = encodeFrame(createFrame({ type: 52, dataContent: JSON.stringify({ errorCode: 301, errorMsg: 'x'.repeat(100) }), from: '0', to: '-1' }));
    expect(decodeFrame(shrinkReply(error)!).dataContent).toBe('{"errorCode":301,"errorMsg":""}');
    const response = encodeFrame(
      createFrame({ type: 50, dataContent: JSON.stringify({ code: 0, firstLoginTime: 1795301271172, caps: 1, maxMessageBytes: 6144 }), from: '0', to: 'bob' }),
    );
    const small = shrinkReply(response)!;
    expect(decodeFrame(small)).toMatchObject({ type: 50, to: 'bob', dataContent: '{"code":0,"firstLoginTime":1795301271172}' });
    expect(small.length).toBe(141);
    expect(shrinkReply(encodeFrame(createFrame({ type: 51, dataContent: '{}', from: '0', to: 'bob' })))).toBeNull();
    expect(shrinkReply(encodeFrame(createFrame({ type: 52, dataContent: 'not json', from: '0', to: 'bob' })))).toBeNull();
  });
});
