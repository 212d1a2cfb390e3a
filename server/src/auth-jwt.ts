import { createPublicKey, type KeyObject } from 'node:crypto';
import { errors, jwtVerify } from 'jose';
import type { Authenticator, AuthVerdict } from './auth';
import { ServerErrorCode } from './errors';

/**
 * JWT login tokens: the token is a compact JWS whose `sub` is the login user id. Exactly one key kind is
 * configured, and it alone fixes the accepted algorithm, so `alg: none` and HS/RS confusion (a token
 * HMAC-signed with the public key as the secret) are refused.
 */
export interface JwtAuthOptions {
  /** HS256 shared secret, at least 32 bytes (RFC 7518 §3.2). Mutually exclusive with `publicKey`. */
  secret?: string | Uint8Array;
  /** RS256 (RSA) or ES256 (EC P-256) public key: SPKI PEM text or a Node KeyObject. */
  publicKey?: string | KeyObject;
  /** Required `aud` (one of these when a list). */
  audience?: string | string[];
  /** Required `iss` (one of these when a list). */
  issuer?: string | string[];
  /** Clock skew allowed on `exp` and `nbf` (default 30000). */
  clockToleranceMs?: number;
}

/** HMAC keys shorter than the hash output are refused (RFC 7518 §3.2). */
const MIN_SECRET_BYTES = 32;

/** Builds the JWT authenticator; throws TypeError/RangeError naming the bad `auth.jwt.*` option. */
export function createJwtAuth(o: JwtAuthOptions): Authenticator {
  if (o === null || typeof o !== 'object') throw new TypeError('auth.jwt must be an object: { secret } or { publicKey }');
  if ((o.secret === undefined) === (o.publicKey === undefined)) {
    throw new TypeError('auth.jwt needs exactly one of secret (HS256) or publicKey (RS256/ES256 PEM)');
  }
  const toleranceMs = o.clockToleranceMs ?? 30000;
  if (!Number.isFinite(toleranceMs) || toleranceMs < 0) throw new RangeError(`auth.jwt.clockToleranceMs must be 0 or more, got ${String(o.clockToleranceMs)}`);
  checkClaimList(o.audience, 'auth.jwt.audience');
  checkClaimList(o.issuer, 'auth.jwt.issuer');

  let key: Uint8Array | KeyObject;
  let alg: 'HS256' | 'RS256' | 'ES256';
  if (o.secret !== undefined) {
    key = typeof o.secret === 'string' ? new TextEncoder().encode(o.secret) : o.secret;
    if (!(key instanceof Uint8Array)) throw new TypeError('auth.jwt.secret must be a string or a Uint8Array');
    if (key.byteLength < MIN_SECRET_BYTES) throw new RangeError(`auth.jwt.secret must be at least ${MIN_SECRET_BYTES} bytes for HS256, got ${key.byteLength}`);
    alg = 'HS256';
  } else {
    key = publicKeyOf(o.publicKey as string | KeyObject);
    alg = algorithmOf(key);
  }

  return {
    kind: 'jwt',
    describe: () => `JWT ${alg} (sub = user id${o.audience ? ', audience checked' : ''}${o.issuer ? ', issuer checked' : ''})`,
    async verify(userId: string, token: string): Promise<AuthVerdict> {
      if (token === '') return refuse(ServerErrorCode.AUTH_INVALID_TOKEN, 'no token');
      try {
        await jwtVerify(token, key, {
          algorithms: [alg],
          subject: userId,
          audience: o.audience,
          issuer: o.issuer,
          clockTolerance: toleranceMs / 1000,
          requiredClaims: ['sub', 'exp'],
        });
        return { ok: true };
      } catch (err) {
        return verdictOf(err);
      }
    },
  };
}

/** Parses a PEM public key (a private key or certificate is refused: the server only verifies). */
function publicKeyOf(pem: string | KeyObject): KeyObject {
  if (typeof pem !== 'string') {
    if (pem && typeof pem === 'object' && (pem as KeyObject).type === 'public') return pem;
    throw new TypeError('auth.jwt.publicKey must be SPKI PEM text or a public KeyObject');
  }
  if (!pem.includes('-----BEGIN PUBLIC KEY-----')) throw new TypeError('auth.jwt.publicKey must be a PEM public key ("-----BEGIN PUBLIC KEY-----")');
  try {
    return createPublicKey(pem);
  } catch (err) {
    throw new TypeError(`auth.jwt.publicKey is not a valid PEM public key: ${(err as Error).message}`);
  }
}

/** The one algorithm a key is used with. */
function algorithmOf(key: KeyObject): 'RS256' | 'ES256' {
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw new RangeError(`auth.jwt.publicKey: an RSA key must have at least 2048 bits, got ${bits}`);
    return 'RS256';
  }
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  const kind = `${key.asymmetricKeyType ?? 'unknown'}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}`;
  throw new TypeError(`auth.jwt.publicKey must be an RSA key (RS256) or an EC P-256 key (ES256), got ${kind}`);
}

function checkClaimList(v: unknown, name: string): void {
  if (v === undefined) return;
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || list.some((x) => typeof x !== 'string' || x === '')) throw new TypeError(`${name} must be a non-empty string or a list of them`);
}

function refuse(code: number, reason: string): AuthVerdict {
  return { ok: false, code, reason };
}

/** Maps jose's errors to a login code and a reason that never contains the token. */
function verdictOf(err: unknown): AuthVerdict {
  if (err instanceof errors.JWTExpired) return refuse(ServerErrorCode.AUTH_TOKEN_EXPIRED, 'token expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf' && err.reason === 'check_failed') return refuse(ServerErrorCode.AUTH_TOKEN_EXPIRED, 'token not yet valid (nbf)');
    if (err.claim === 'sub' && err.reason === 'check_failed') return refuse(ServerErrorCode.AUTH_INVALID_TOKEN, 'token is for another user (sub)');
    return refuse(ServerErrorCode.AUTH_INVALID_TOKEN, `claim "${err.claim}" ${err.reason === 'missing' ? 'missing' : 'invalid'}`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return refuse(ServerErrorCode.AUTH_INVALID_TOKEN, 'algorithm not allowed');
  if (err instanceof errors.JWSSignatureVerificationFailed) return refuse(ServerErrorCode.AUTH_INVALID_TOKEN, 'bad signature');
  if (err instanceof errors.JOSEError) return refuse(ServerErrorCode.AUTH_INVALID_TOKEN, `malformed token (${err.code})`);
  return refuse(ServerErrorCode.AUTH_INVALID_TOKEN, 'malformed token');
}
