// A server in its own process for heap tests: started with the options given as JSON in argv[2] (plus
// `noStore: true` for an onOffline hook that refuses, so no message goes to SQLite), it prints
// {"ws": port} once listening, and {"heapUsed": bytes} after a full GC for each "heap" line on stdin.
import { createInterface } from 'node:readline';
import { createServer, silentLogger } from '../../server/dist/index.js';

const { noStore, ...opts } = JSON.parse(process.argv[2] ?? '{}');
const server = await createServer({
  ws: { port: 0, host: '127.0.0.1' },
  tcp: false,
  udp: false,
  http: false,
  rateLimit: false,
  logger: silentLogger,
  ...(noStore ? { hooks: { onOffline: () => false } } : {}),
  ...opts,
});
process.stdout.write(`${JSON.stringify({ ws: server.ports.ws })}\n`);
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'heap') return;
  globalThis.gc();
  process.stdout.write(`${JSON.stringify({ heapUsed: process.memoryUsage().heapUsed })}\n`);
});
