import { generateKeyPairSync } from 'node:crypto';
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { describe, expect, it } from 'vitest';
import { createServer, ServerErrorCode, silentLogger, type JwtAuthOptions } from '../../server/src/index';
import { dataFrame, errorOf, login, loginFrame, useServers } from './helpers';
import { nowSeconds, recordingLogger, tryLogin, unsignedJwt } from './auth-helpers';

const { setup } = useServers();
const SECRET = 'test-secret-that-is-at-least-32-bytes-long';
const key = new TextEncoder().encode(SECRET);

/** An HS256 token for `sub`, valid for a minute unless `claims` say otherwise. */
function hs256(sub: string | undefined, claims: Record<string, unknown> = {}, secret: Uint8Array = key): Promise<string> {
  const jwt = new SignJWT({ exp: nowSeconds() + 60, ...claims }).setProtectedHeader({ alg: 'HS256' });
  if (sub !== undefined) jwt.setSubject(sub);
  return jwt.sign(secret);
}

async function jwtServer(jwt: JwtAuthOptions = { secret: SECRET }, extra: Parameters<typeof setup>[0] = {}) {
  return setup({ auth: { jwt }, tcp: false, udp: false, ...extra });
}

describe('JWT authentication (HS256)', () => {
  it('accepts a token whose sub is the login user id, and refuses a bad signature with 328, then closes', async () => {
    const logger = recordingLogger();
    const { server, ws } = await jwtServer(undefined, { logger });
    expect(await tryLogin(await ws(), 'bob', await hs256('bob'))).toMatchObject({ code: 0, closed: false });
    const forged = await hs256('alice', {}, new TextEncoder().encode('another-secret-that-is-32-bytes-long!'));
    expect(await tryLogin(await ws(), 'alice', forged)).toEqual({ code: ServerErrorCode.AUTH_INVALID_TOKEN, firstLoginTime: -1, closed: true });
    expect(server.onlineUsers()).toEqual(['bob']);
    const line = logger.lines.find((l) => l.includes('login refused'));
    expect(line).toMatch(/^info: login refused \{"user":"alice","code":328,"reason":"bad signature",/);
    expect(logger.lines.join('\n')).not.toContain(forged);
    expect(server.metrics().loginFailures).toBe(1);
  });

  it('refuses and closes on TCP and UDP too', async () => {
    const { tcp, udp } = await setup({ auth: { jwt: { secret: SECRET } } });
    expect(await tryLogin(await tcp(), 'bob', await hs256('mallory'))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN, closed: true });
    expect(await tryLogin(await tcp(), 'bob', await hs256('bob'))).toMatchObject({ code: 0, closed: false });
    const u = await udp();
    u.send(loginFrame('alice', 0, await hs256('mallory')));
    expect(JSON.parse((await u.nextOfType(50)).dataContent as string)).toEqual({ code: ServerErrorCode.AUTH_INVALID_TOKEN, firstLoginTime: -1 });
    // The refused peer has no session: a keep-alive is answered with 301 (not logged in), not 51.
    u.send({ bridge: false, type: 1, dataContent: '{}', from: 'alice', to: '0', QoS: false, typeu: -1, sm: -1 });
    expect(errorOf(await u.nextOfType(52)).errorCode).toBe(ServerErrorCode.UNLOGIN);
  });

  it('stops Mallory from logging in as bob with her own token: bob is not kicked and his messages stay his', async () => {
    const { server, ws } = await jwtServer();
    const bob = await ws();
    expect(await tryLogin(bob, 'bob', await hs256('bob'))).toMatchObject({ code: 0 });
    const alice = await ws();
    await tryLogin(alice, 'alice', await hs256('alice'));

    const mallory = await ws();
    expect(await tryLogin(mallory, 'bob', await hs256('mallory'))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN, closed: true });
    expect(server.onlineUsers().sort()).toEqual(['alice', 'bob']);
    expect(await bob.quiet()).toEqual([]);
    expect(mallory.frames.map((f) => f.type)).toEqual([50]);

    // With bob offline, a message waits in his box; Mallory's login as bob still gets nothing of it.
    bob.close();
    await bob.closed;
    alice.send(dataFrame('alice', 'bob', 'for bob only', 'fp-1'));
    await alice.nextOfType(4);
    const mallory2 = await ws();
    expect(await tryLogin(mallory2, 'bob', await hs256('mallory'))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    expect(mallory2.frames.map((f) => f.type)).toEqual([50]);
    const bob2 = await ws();
    expect(await tryLogin(bob2, 'bob', await hs256('bob'))).toMatchObject({ code: 0 });
    expect((await bob2.nextOfType(2)).dataContent).toBe('for bob only');
  });

  it('refuses an expired token with 329 past the 30 s clock tolerance, and accepts one within it', async () => {
    const { ws } = await jwtServer();
    expect(await tryLogin(await ws(), 'u1', await hs256('u1', { exp: nowSeconds() - 40 }))).toMatchObject({ code: ServerErrorCode.AUTH_TOKEN_EXPIRED, closed: true });
    expect(await tryLogin(await ws(), 'u2', await hs256('u2', { exp: nowSeconds() - 20 }))).toMatchObject({ code: 0 });
  });

  it('refuses a token not yet valid (nbf) with 329 past the tolerance, and accepts one within it', async () => {
    const { ws } = await jwtServer();
    expect(await tryLogin(await ws(), 'u1', await hs256('u1', { nbf: nowSeconds() + 40 }))).toMatchObject({ code: ServerErrorCode.AUTH_TOKEN_EXPIRED, closed: true });
    expect(await tryLogin(await ws(), 'u2', await hs256('u2', { nbf: nowSeconds() + 20 }))).toMatchObject({ code: 0 });
  });

  it('honours clockToleranceMs', async () => {
    const { ws } = await jwtServer({ secret: SECRET, clockToleranceMs: 0 });
    expect(await tryLogin(await ws(), 'u1', await hs256('u1', { exp: nowSeconds() - 2 }))).toMatchObject({ code: ServerErrorCode.AUTH_TOKEN_EXPIRED });
  });

  it('refuses a token without exp, without sub, or with no token at all (328)', async () => {
    const { ws } = await jwtServer();
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').sign(key);
    expect(await tryLogin(await ws(), 'u1', noExp)).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    expect(await tryLogin(await ws(), 'u1', await hs256(undefined))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    expect(await tryLogin(await ws(), 'u1', '')).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    expect(await tryLogin(await ws(), 'u1', 'not.a.jwt')).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
  });

  it('checks audience and issuer when configured', async () => {
    const { ws } = await jwtServer({ secret: SECRET, audience: 'im', issuer: 'https://auth.example' });
    const iss = 'https://auth.example';
    expect(await tryLogin(await ws(), 'u1', await hs256('u1', { aud: 'other', iss }))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    expect(await tryLogin(await ws(), 'u2', await hs256('u2', { iss }))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    expect(await tryLogin(await ws(), 'u3', await hs256('u3', { aud: 'im', iss: 'https://evil.example' }))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    expect(await tryLogin(await ws(), 'u4', await hs256('u4', { aud: 'im', iss }))).toMatchObject({ code: 0 });
  });

  it('refuses alg "none" and algorithms other than HS256', async () => {
    const { ws } = await jwtServer();
    const none = unsignedJwt({ alg: 'none', typ: 'JWT' }, { sub: 'u1', exp: nowSeconds() + 60 });
    expect(await tryLogin(await ws(), 'u1', none)).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    const hs512 = await new SignJWT({ exp: nowSeconds() + 60 }).setProtectedHeader({ alg: 'HS512' }).setSubject('u1').sign(new Uint8Array(64).fill(7));
    expect(await tryLogin(await ws(), 'u1', hs512)).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
  });

  it('runs the verifyLogin hook only for logins the token accepted, and lets it refuse those', async () => {
    const asked: string[] = [];
    const { ws } = await jwtServer(undefined, { hooks: { verifyLogin: (uid) => (asked.push(uid), uid === 'banned' ? 1030 : 0) } });
    expect(await tryLogin(await ws(), 'banned', await hs256('banned'))).toMatchObject({ code: 1030, closed: true });
    expect(await tryLogin(await ws(), 'mallory', await hs256('bob'))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    expect(await tryLogin(await ws(), 'bob', await hs256('bob'))).toMatchObject({ code: 0 });
    expect(asked).toEqual(['banned', 'bob']);
  });
});

describe('JWT authentication with a public key', () => {
  for (const alg of ['RS256', 'ES256'] as const) {
    it(`${alg}: accepts a token signed with the private key, refuses one signed with another key and an HS256 token keyed with the public key`, async () => {
      const pair = await generateKeyPair(alg, { extractable: true });
      const other = await generateKeyPair(alg);
      const pem = await exportSPKI(pair.publicKey);
      const { ws } = await jwtServer({ publicKey: pem });
      const sign = (sub: string, k: CryptoKey) => new SignJWT({}).setProtectedHeader({ alg }).setSubject(sub).setExpirationTime('1m').sign(k);
      expect(await tryLogin(await ws(), 'bob', await sign('bob', pair.privateKey))).toMatchObject({ code: 0 });
      expect(await tryLogin(await ws(), 'bob', await sign('bob', other.privateKey))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
      expect(await tryLogin(await ws(), 'bob', await sign('mallory', pair.privateKey))).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
      // HS/RS confusion: the public key is public, so a token HMAC-signed with its PEM text must not pass.
      const confused = await hs256('bob', {}, new TextEncoder().encode(pem));
      expect(await tryLogin(await ws(), 'bob', confused)).toMatchObject({ code: ServerErrorCode.AUTH_INVALID_TOKEN });
    });
  }
});

describe('JWT options', () => {
  it('are validated at start, naming the option', async () => {
    const rsaSmall = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const bad: Array<[unknown, RegExp]> = [
      [{ jwt: { secret: 'short' } }, /auth\.jwt\.secret must be at least 32 bytes/],
      [{ jwt: {} }, /exactly one of secret .* or publicKey/],
      [{ jwt: { secret: SECRET, publicKey: rsaSmall } }, /exactly one/],
      [{ jwt: { publicKey: 'not a pem' } }, /auth\.jwt\.publicKey must be a PEM public key/],
      [{ jwt: { publicKey: rsaSmall } }, /at least 2048 bits/],
      [{ jwt: { publicKey: ed } }, /RSA key .* or an EC P-256 key/],
      [{ jwt: { secret: SECRET, clockToleranceMs: -1 } }, /clockToleranceMs/],
      [{ jwt: { secret: SECRET, audience: '' } }, /auth\.jwt\.audience/],
      [{ jwt: { secret: SECRET }, webhook: { url: 'http://x' } }, /exactly one of the keys/],
      ['yes', /auth must be 'none'/],
    ];
    for (const [auth, message] of bad) {
      await expect(createServer({ auth: auth as never, ws: { port: 0 }, tcp: false, udp: false, http: false, logger: silentLogger }), JSON.stringify(auth)).rejects.toThrow(message);
    }
  });
});

describe('start-up notice', () => {
  it('warns that every login is accepted when nothing verifies logins, and gives a notice with auth none', async () => {
    const quiet = recordingLogger();
    const { ws } = await setup({ logger: quiet, tcp: false, udp: false });
    expect(quiet.lines.filter((l) => l.startsWith('warn:'))).toEqual([expect.stringMatching(/NOT CONFIGURED: every login is accepted/)]);
    expect(await login(await ws(), 'anyone')).toMatchObject({ code: 0 });

    const explicit = recordingLogger();
    await setup({ logger: explicit, auth: 'none', tcp: false, udp: false });
    expect(explicit.lines.filter((l) => l.startsWith('warn:'))).toEqual([]);
    expect(explicit.lines).toContainEqual(expect.stringMatching(/^info: authentication: none \(auth: 'none'\): every login is accepted/));

    const hooked = recordingLogger();
    await setup({ logger: hooked, hooks: { verifyLogin: () => 0 }, tcp: false, udp: false });
    expect(hooked.lines.filter((l) => l.startsWith('warn:'))).toEqual([]);

    const jwt = recordingLogger();
    await setup({ logger: jwt, auth: { jwt: { secret: SECRET } }, tcp: false, udp: false });
    expect(jwt.lines).toContain('info: authentication: JWT HS256 (sub = user id)');
    expect(jwt.lines.join('\n')).not.toContain(SECRET);
  });
});
