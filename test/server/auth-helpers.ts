import type { Logger } from '../../server/src/index';
import { loginFrame, type RawClient } from './helpers';

/** A logger that keeps every line, with its level, for assertions. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string, ...args: unknown[]) => {
    lines.push(`${level}: ${message}${args.length ? ` ${args.map((a) => (a && typeof a === 'object' ? JSON.stringify(a) : String(a))).join(' ')}` : ''}`);
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** What a login attempt ended with: the type-50 payload, and whether the server then closed the connection. */
export interface LoginOutcome {
  code: number;
  firstLoginTime: number;
  closed: boolean;
}

/** Sends a login with `token` and waits for the answer (and, for a refusal, the close). */
export async function tryLogin(c: RawClient, userId: string, token: string, firstLoginTime = 0): Promise<LoginOutcome> {
  c.send(loginFrame(userId, firstLoginTime, token));
  const r = JSON.parse((await c.nextOfType(50)).dataContent as string) as { code: number; firstLoginTime: number };
  if (r.code !== 0) await c.closed;
  return { ...r, closed: c.closeInfo !== null };
}

/** A compact JWS with any header and payload and an empty signature (for `alg: none`). */
export function unsignedJwt(header: object, payload: object): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64(header)}.${b64(payload)}.`;
}

/** Seconds since the epoch, as JWT claims count. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
