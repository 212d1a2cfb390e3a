import { createJwtAuth, type JwtAuthOptions } from './auth-jwt';
import { createWebhookAuth, type WebhookAuthOptions } from './auth-webhook';
import type { Logger } from './logger';

/**
 * How logins are authenticated: a JWT whose `sub` is the user id, the application's backend over HTTP,
 * or `'none'` (every login is accepted: development only). It runs before the `verifyLogin` hook, which
 * is only asked about logins the authenticator accepted.
 */
export type AuthOptions = 'none' | { jwt: JwtAuthOptions } | { webhook: WebhookAuthOptions };

/** The outcome of one verification: a refusal carries the login code and a reason for the log (never the token). */
export type AuthVerdict = { ok: true } | { ok: false; code: number; reason: string };

/** A configured login verifier. */
export interface Authenticator {
  readonly kind: 'jwt' | 'webhook';
  /** Never rejects: failures of the verifier itself are refusals with their own code. */
  verify(userId: string, token: string, extra: string | null): Promise<AuthVerdict>;
  /** One line for the start-up banner (no secrets). */
  describe(): string;
}

/** Builds the authenticator for `auth`; null for `'none'` or absent. Throws TypeError/RangeError naming the bad option. */
export function createAuthenticator(auth: AuthOptions | undefined): Authenticator | null {
  if (auth === undefined || auth === 'none') return null;
  if (auth === null || typeof auth !== 'object') throw new TypeError(`auth must be 'none', { jwt: {...} } or { webhook: {...} }, got ${String(auth)}`);
  const keys = Object.keys(auth);
  if (keys.length !== 1 || (keys[0] !== 'jwt' && keys[0] !== 'webhook')) {
    throw new TypeError(`auth must have exactly one of the keys jwt or webhook, got ${JSON.stringify(keys)}`);
  }
  return 'jwt' in auth ? createJwtAuth(auth.jwt) : createWebhookAuth(auth.webhook);
}

/** What the server says at start about authentication: a warning when nothing checks logins, a notice for `'none'`. */
export function authNotice(auth: AuthOptions | undefined, authenticator: Authenticator | null, hasVerifyHook: boolean): { level: 'warn' | 'info'; message: string } {
  if (authenticator) return { level: 'info', message: `authentication: ${authenticator.describe()}${hasVerifyHook ? ', then the verifyLogin hook' : ''}` };
  if (hasVerifyHook) return { level: 'info', message: 'authentication: the verifyLogin hook only' };
  if (auth === 'none') return { level: 'info', message: "authentication: none (auth: 'none'): every login is accepted, anyone can log in as anyone" };
  return {
    level: 'warn',
    message:
      'authentication: NOT CONFIGURED: every login is accepted, anyone can log in as anyone and read their messages. ' +
      "Configure --auth-jwt-secret, --auth-jwt-public-key or --auth-webhook (library: auth), or pass --auth none (auth: 'none') to say it is intended",
  };
}

/** Logs {@link authNotice} on `logger`. */
export function logAuthNotice(logger: Logger, notice: { level: 'warn' | 'info'; message: string }): void {
  logger[notice.level](notice.message);
}
