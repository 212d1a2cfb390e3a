import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MsgType } from '../../src/protocol';
import { loginOnline, makeClient } from '../helpers/setup';
import { readVectors, requireVectors } from '../helpers/vectors';

beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
afterEach(() => vi.useRealTimers());

describe.skipIf(!requireVectors())('frames the SDK sends, against the captured Java client frames', () => {
  it('login, keep-alive, C2S data and logout match the TCP transcript byte for byte', async () => {
    const captured = readVectors('tcp-session-transcript.jsonl')
      .filter((l) => l.dir === 'client->server' && l.text)
      .map((l) => l.text as string);
    expect(captured).toHaveLength(4);
    // A MobileIMSDK client asks for no capabilities: with receipts off, our login is the Java client's.
    const ctx = makeClient({ senseMode: 2, receipts: false });
    const sock = await loginOnline(ctx, 'tcp1', 1795301271172);
    await vi.advanceTimersByTimeAsync(5000);
    sock.deliver({ type: 51, dataContent: '{}', to: 'tcp1' });
    ctx.client.send('0', 'hi 你好 <&>', { fp: 'fp-tcp-1' }).catch(() => undefined);
    sock.deliver({ type: 4, dataContent: 'fp-tcp-1', to: 'tcp1' });
    await ctx.client.logout();
    expect(sock.sentText).toEqual(captured);
  });

  it('an ACK for a relayed message has the shape the WebSocket transcript shows', async () => {
    const lines = readVectors('ws-session-transcripts.jsonl').filter((l) => l.scenario === 'c2c' && l.conn === 'B');
    const relayed = lines.find((l) => l.dir === 'server->client' && l.frame?.type === 2 && l.frame?.QoS === true)!;
    const ack = lines.find((l) => l.dir === 'client->server' && l.frame?.type === 4)!;
    const ctx = makeClient();
    const sock = await loginOnline(ctx, 'ub');
    sock.deliver(relayed.text as string);
    const [sent] = sock.sentOfType(MsgType.ACK);
    for (const [k, v] of Object.entries(ack.frame as Record<string, unknown>)) expect(sent[k as keyof typeof sent], k).toEqual(v);
    expect(ctx.of('message')).toEqual([expect.objectContaining({ fp: 'fp-c2c-1', from: 'ua', content: 'hello b', typeu: 1 })]);
    ctx.client.destroy();
  });
});
