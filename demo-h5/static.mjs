// A small static file server for the demos: GET and HEAD only, no directory listings, no path escapes.
import { createReadStream, promises as fs } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, posix, resolve, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.ttf': 'font/ttf',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Starts an HTTP server for the files under `root` and resolves with `{ port, url, close }`.
 * `prefixes` limits which URL paths are served (default: all); `redirects` maps exact paths to new ones;
 * `routes` maps exact paths to handlers `(req, res) => void` answered before any file.
 */
export async function startStaticServer({ root, port = 0, host = '127.0.0.1', prefixes = ['/'], redirects = {}, routes = {} }) {
  const base = resolve(root);
  const server = createServer((req, res) => {
    handle(base, prefixes, redirects, routes, req, res).catch(() => send(res, 500, 'internal error'));
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const bound = server.address().port;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  return {
    port: bound,
    url: `http://${shownHost}:${bound}`,
    close: () =>
      new Promise((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

async function handle(base, prefixes, redirects, routes, req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
  const url = new URL(req.url ?? '/', 'http://demo');
  let path;
  try {
    path = posix.normalize(decodeURIComponent(url.pathname));
  } catch {
    return send(res, 400, 'bad path');
  }
  if (redirects[path]) {
    res.writeHead(302, { location: redirects[path] + url.search }).end();
    return;
  }
  if (routes[path]) return routes[path](req, res);
  if (path.includes('\0') || !prefixes.some((p) => path.startsWith(p))) return send(res, 404, 'not found');
  let file = normalize(join(base, path));
  if (file !== base && !file.startsWith(base + sep)) return send(res, 404, 'not found');
  let stat = await fs.stat(file).catch(() => null);
  if (stat && stat.isDirectory()) {
    if (!path.endsWith('/')) {
      res.writeHead(301, { location: path + '/' + url.search }).end();
      return;
    }
    file = join(file, 'index.html');
    stat = await fs.stat(file).catch(() => null);
  }
  if (!stat || !stat.isFile()) return send(res, 404, 'not found');
  res.writeHead(200, {
    'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'content-length': stat.size,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') return void res.end();
  createReadStream(file).pipe(res);
}

function send(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
}
