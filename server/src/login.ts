import { createFrame, decodeLoginInfo, KickoutCode, MsgType, SERVER_ID, UNSET_ID, type Protocal } from '../../src/protocol';
import type { ServerCore } from './core';
import { replayStored } from './delivery';
import { ServerErrorCode } from './errors';
import type { Session } from './session';
import { isValidUserId } from './user-id';

/** The login code sent when `verifyLogin` returns false. */
export const DEFAULT_REJECT_CODE = 1025;

/**
 * Type 0: verify through the hook, answer with type 50, arbitrate duplicate logins by
 * `firstLoginTime`, then deliver what is stored for the user. Unlike MobileIMSDK, a logged-in connection
 * can only repeat its own login; a login for another user id is refused with error 314.
 */
export async function handleLogin(core: ServerCore, s: Session, p: Protocal): Promise<void> {
  let info: ReturnType<typeof decodeLoginInfo>;
  try {
    info = decodeLoginInfo(p.dataContent);
  } catch (err) {
    core.rejectInput(s, ServerErrorCode.BAD_FRAME, `bad login: ${(err as Error).message}`);
    return;
  }
  const uid = info.loginUserId;
  if (!isValidUserId(uid)) {
    core.rejectInput(s, ServerErrorCode.BAD_FRAME, 'bad login: loginUserId is missing, reserved ("0", "-1") or too long');
    return;
  }
  if (s.userId) {
    if (s.userId !== uid) {
      core.sendError(s, ServerErrorCode.ALREADY_LOGGED_IN, `this connection is logged in as "${s.userId}"; log out first`);
      return;
    }
    core.send(s, loginResponse(0, s.firstLoginTime, uid));
    return;
  }

  let code: number;
  try {
    const verdict: unknown = core.opts.hooks.verifyLogin ? await core.opts.hooks.verifyLogin(uid, info.loginToken ?? '', info.extra ?? null, s.info()) : 0;
    code = loginCodeOf(verdict);
  } catch (err) {
    core.opts.logger.error(`verifyLogin failed for "${uid}"`, err);
    code = ServerErrorCode.SERVER_ERROR;
  }
  if (s.closed) return;
  if (code !== 0) {
    core.metrics.loginFailures++;
    core.send(s, loginResponse(code, -1, UNSET_ID));
    core.closeSession(s);
    return;
  }

  const ft = info.firstLoginTime;
  const ftOut = ft <= 0 ? Date.now() : ft;
  core.send(s, loginResponse(0, ftOut, uid));
  const verdict = core.online.decide(uid, s, ft);
  if (verdict.kind === 'reject') {
    core.kickSession(s, uid, KickoutCode.DUPLICATE_LOGIN);
    return;
  }
  core.online.put(uid, s);
  if (verdict.kind === 'replace') {
    if (verdict.kick) core.kickSession(verdict.old, uid, KickoutCode.DUPLICATE_LOGIN);
    else core.closeSession(verdict.old);
  }
  s.userId = uid;
  s.firstLoginTime = ftOut;
  if (s.loginTimer) clearTimeout(s.loginTimer);
  s.loginTimer = null;
  core.metrics.logins++;
  const connInfo = s.info();
  core.safely('onLoginSuccess', () => core.opts.hooks.onLoginSuccess?.(uid, info.extra ?? null, connInfo));
  await replayStored(core, s);
}

/** true or 0 accepts, false is {@link DEFAULT_REJECT_CODE}, an int32 is the code; anything else is a hook bug and refuses. */
function loginCodeOf(verdict: unknown): number {
  if (verdict === true) return 0;
  if (verdict === false) return DEFAULT_REJECT_CODE;
  if (Number.isInteger(verdict) && (verdict as number) >= -(2 ** 31) && (verdict as number) < 2 ** 31) return verdict as number;
  throw new TypeError(`verifyLogin must return a 32-bit integer login code or a boolean, got ${String(verdict)}`);
}

function loginResponse(code: number, firstLoginTime: number, to: string): Protocal {
  return createFrame({ type: MsgType.LOGIN_RESPONSE, dataContent: JSON.stringify({ code, firstLoginTime }), from: SERVER_ID, to });
}
