import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startRedisServer } from '../helpers/redis-server';

/** The test harness's redis-server: a missing binary fails loudly; restart keeps the port and the AOF. */
describe('startRedisServer', () => {
  it('fails, naming the Debian package, when redis-server is not on the PATH (never a skip)', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(startRedisServer()).rejects.toThrow(/redis-server is not installed.*apt-get install redis-server/);
    } finally {
      process.env.PATH = path;
    }
  });

  it('restarts on the same port with the data from its AOF, after a SIGKILL too', async () => {
    const server = await startRedisServer();
    const client = new Redis(server.url, { maxRetriesPerRequest: null });
    client.on('error', () => {});
    try {
      expect(await client.config('GET', 'appendfsync')).toEqual(['appendfsync', 'everysec']);
      await client.set('k', 'v');
      const firstPid = server.pid;
      await server.kill();
      await server.restart();
      expect(server.pid).not.toBe(firstPid);
      expect(await client.get('k')).toBe('v');
    } finally {
      client.disconnect();
      await server.stop();
    }
  });
});
