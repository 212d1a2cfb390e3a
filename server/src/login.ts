import { createFrame, decodeLoginInfo, KickoutCode, MsgType, SERVER_ID, UNSET_ID, type Protocal } from '../../src/protocol';
import type { ServerContext } from './context';
import { ServerErrorCode } from './errors';
import { isPromise } from './maybe-promise';
import type { PresenceClaim } from './presence';
import { flushReceipts, requestedCaps, SUPPORTED_CAPS } from './receipts';
import { replayStored } from './replay';
import type { Session } from './session';
import { isValidUserId } from './user-id';

/** The login code sent when `verifyLogin` returns false. */
export const DEFAULT_REJECT_CODE = 1025;

/**
 * How far ahead of this server's clock a claimed `firstLoginTime` may be (clock differences between
 * the nodes that handed it out, or a clock stepped back). A later one was not handed out by a server.
 */
export const FIRST_LOGIN_TIME_SKEW_MS = 60000;

/**
 * Type 0: verify through the authenticator and then the hook (a refusal: type 50 with the code, then
 * close), answer with type 50, arbitrate duplicate logins by `firstLoginTime`, then deliver what is
 * stored for the user. Unlike MobileIMSDK, a logged-in connection can only repeat its own login; a login
 * for another user id is refused with error 314.
 */
export async function handleLogin(ctx: ServerContext, s: Session, p: Protocal): Promise<void> {
  let info: ReturnType<typeof decodeLoginInfo>;
  try {
    info = decodeLoginInfo(p.dataContent);
  } catch (err) {
    ctx.io.rejectInput(s, ServerErrorCode.BAD_FRAME, `bad login: ${(err as Error).message}`);
    return;
  }
  const uid = info.loginUserId;
  if (!isValidUserId(uid)) {
    ctx.io.rejectInput(s, ServerErrorCode.BAD_FRAME, 'bad login: loginUserId is missing, reserved ("0", "-1") or too long');
    return;
  }
  if (s.userId) {
    if (s.userId !== uid) {
      ctx.io.sendError(s, ServerErrorCode.ALREADY_LOGGED_IN, `this connection is logged in as "${s.userId}"; log out first`);
      return;
    }
    acceptLogin(ctx, s, uid, s.firstLoginTime, requestedCaps(p.dataContent));
    return;
  }

  const { code, reason } = await decideLogin(ctx, s, uid, info.loginToken ?? '', info.extra ?? null);
  if (s.closed) return;
  if (code !== 0) {
    ctx.metrics.loginRefused(code);
    const backend = code === ServerErrorCode.AUTH_UNAVAILABLE || code === ServerErrorCode.AUTH_BUSY;
    ctx.opts.logger[backend ? 'warn' : 'info']('login refused', { user: uid, code, reason, session: s.id, transport: s.transport, remote: s.remote });
    ctx.io.send(s, loginResponse(code, -1, UNSET_ID));
    ctx.io.closeSession(s);
    return;
  }

  const now = Date.now();
  const ft = trustedFirstLoginTime(info.firstLoginTime, now);
  const ftOut = ft === 0 ? now : ft;
  const caps = requestedCaps(p.dataContent);
  // Arbitrated and recorded in one step (atomic in a shared presence), then bound to this process's session.
  // Claimed before the answer: a cluster node that cannot reach the shared presence refuses the login.
  // The session is its own presence entry (node, id, firstLoginTime), so it is claimed with its login's time.
  s.firstLoginTime = ftOut;
  let verdict: PresenceClaim;
  try {
    const claimed = ctx.presence.claim(uid, s, ft);
    verdict = isPromise(claimed) ? await claimed : claimed;
  } catch (err) {
    ctx.metrics.loginRefused(ServerErrorCode.CLUSTER_UNAVAILABLE);
    ctx.opts.logger.warn(`login of "${uid}" refused with error ${ServerErrorCode.CLUSTER_UNAVAILABLE}: the presence cannot be reached`, {
      session: s.id,
      error: (err as Error).message,
    });
    // An error frame, not a login code: a refused login code stops an SDK for good, a closed link makes it retry.
    ctx.io.sendError(s, ServerErrorCode.CLUSTER_UNAVAILABLE, 'the server cannot reach its cluster state now; retry later');
    ctx.io.closeSession(s);
    // A claim that timed out may still run once Redis catches up: it is undone (sent after it, retried by
    // the presence while Redis is unreachable), giving the user back to the session it replaced.
    releaseQuietly(ctx, uid, s);
    return;
  }
  acceptLogin(ctx, s, uid, ftOut, caps);
  if (verdict.kind === 'reject') {
    ctx.io.kickSession(s, uid, KickoutCode.DUPLICATE_LOGIN);
    return;
  }
  if (s.closed) {
    // Only while an asynchronous claim was answered: the connection went in the meantime. The claim is
    // undone, so a session it replaced (not ended yet) holds the user again rather than be unreachable.
    releaseQuietly(ctx, uid, s);
    return;
  }
  ctx.sessions.bind(uid, s);
  if (verdict.kind === 'replace') {
    const ended = ctx.routing.endSession(verdict.old, uid, verdict.kick ? KickoutCode.DUPLICATE_LOGIN : null);
    if (isPromise(ended)) ended.catch((err: unknown) => ctx.opts.logger.error(`ending the superseded session of "${uid}" failed`, err));
  }
  s.userId = uid;
  s.link.loggedIn?.();
  if (s.budget) ctx.userBudgets?.carryInto(uid, s.budget);
  if (s.loginTimer) clearTimeout(s.loginTimer);
  s.loginTimer = null;
  ctx.metrics.logins++;
  ctx.opts.logger.info('login', { user: uid, session: s.id, transport: s.transport, remote: s.remote });
  const connInfo = s.info();
  ctx.safely('onLoginSuccess', () => ctx.opts.hooks.onLoginSuccess?.(uid, info.extra ?? null, connInfo));
  flushReceipts(ctx, s, uid, Date.now());
  await replayStored(ctx, s);
}

/** Undoes (or, without `abandon`, removes) the presence entry `s` may hold for `uid`, logging a failure (never rejecting). */
function releaseQuietly(ctx: ServerContext, uid: string, s: Session): void {
  try {
    const released = ctx.presence.abandon ? ctx.presence.abandon(uid, s.id) : ctx.presence.release(uid, ctx.opts.nodeId, s.id);
    if (isPromise(released)) released.catch((err: unknown) => ctx.opts.logger.warn(`releasing "${uid}" failed; retried`, { error: (err as Error).message }));
  } catch (err) {
    ctx.opts.logger.error(`releasing "${uid}" failed`, err);
  }
}

/**
 * The `firstLoginTime` a login is arbitrated with: the claimed one if it could have come from a server
 * (a positive safe integer, at most {@link FIRST_LOGIN_TIME_SKEW_MS} ahead of `nowMs`), otherwise 0
 * (a first login). So a claim of 9e15 cannot outrank the real user's later logins for ever, and what the
 * server echoes is always a Java `long` in plain digits (never `1e+300`).
 */
export function trustedFirstLoginTime(claimed: number, nowMs: number): number {
  return Number.isSafeInteger(claimed) && claimed > 0 && claimed <= nowMs + FIRST_LOGIN_TIME_SKEW_MS ? claimed : 0;
}

/**
 * The login code and, for a refusal, why: the configured authenticator first (JWT or webhook), then the
 * `verifyLogin` hook for the logins it accepted.
 */
async function decideLogin(ctx: ServerContext, s: Session, uid: string, token: string, extra: string | null): Promise<{ code: number; reason: string }> {
  if (ctx.opts.auth) {
    const verdict = await ctx.opts.auth.verify(uid, token, extra);
    if (!verdict.ok) return { code: verdict.code, reason: verdict.reason };
    if (s.closed) return { code: 0, reason: '' };
  }
  if (!ctx.opts.hooks.verifyLogin) return { code: 0, reason: '' };
  try {
    const code = loginCodeOf(await ctx.opts.hooks.verifyLogin(uid, token, extra, s.info()));
    return { code, reason: 'refused by the verifyLogin hook' };
  } catch (err) {
    ctx.opts.logger.error(`verifyLogin failed for ${JSON.stringify(uid)}`, err);
    return { code: ServerErrorCode.SERVER_ERROR, reason: 'the verifyLogin hook failed' };
  }
}

/** true or 0 accepts, false is {@link DEFAULT_REJECT_CODE}, an int32 is the code; anything else is a hook bug and refuses. */
function loginCodeOf(verdict: unknown): number {
  if (verdict === true) return 0;
  if (verdict === false) return DEFAULT_REJECT_CODE;
  if (Number.isInteger(verdict) && (verdict as number) >= -(2 ** 31) && (verdict as number) < 2 ** 31) return verdict as number;
  throw new TypeError(`verifyLogin must return a 32-bit integer login code or a boolean, got ${String(verdict)}`);
}

/**
 * Answers a login with code 0. The session grants exactly the capabilities the answer names: the client
 * honours the answer to its last login (a repeated one on the same connection included).
 */
function acceptLogin(ctx: ServerContext, s: Session, uid: string, firstLoginTime: number, caps: number | null): void {
  s.caps = (caps ?? 0) & SUPPORTED_CAPS;
  ctx.io.send(s, loginResponse(0, firstLoginTime, uid, ctx.opts.maxMessageBytes, caps));
}

/**
 * The type-50 frame. A login that carried `caps` (our SDK) also learns, in keys after MobileIMSDK's two,
 * the capabilities granted and the largest message the server takes; any other login gets MobileIMSDK's
 * response byte for byte.
 */
function loginResponse(code: number, firstLoginTime: number, to: string, maxMessageBytes?: number, caps: number | null = null): Protocal {
  const body: Record<string, number> = { code, firstLoginTime };
  if (maxMessageBytes !== undefined && caps !== null) {
    body.caps = caps & SUPPORTED_CAPS;
    body.maxMessageBytes = maxMessageBytes;
  }
  return createFrame({ type: MsgType.LOGIN_RESPONSE, dataContent: JSON.stringify(body), from: SERVER_ID, to });
}
