// One cluster node in its own process, so a fault test can SIGKILL it: the built server (server/dist)
// started with the options given as JSON in argv[2] (merged over loopback WebSocket on port 0, nothing
// else listening). It prints {"ws": port} on stdout once listening; its warnings go to stderr. SIGTERM
// closes it and exits.
import { createLogger, createServer } from '../../server/dist/index.js';

const opts = JSON.parse(process.argv[2] ?? '{}');
const server = await createServer({
  ws: { port: 0, host: '127.0.0.1' },
  tcp: false,
  udp: false,
  http: false,
  rateLimit: false,
  logger: createLogger({ level: 'warn', nodeId: opts.nodeId, destination: process.stderr }),
  ...opts,
});
process.stdout.write(`${JSON.stringify({ ws: server.ports.ws })}\n`);
process.on('SIGTERM', () => {
  server.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
