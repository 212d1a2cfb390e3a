/**
 * The MobileIMSDK v6 wire format: the `Protocal` envelope (the spelling is MobileIMSDK's own), its type
 * codes, the JSON payloads carried in `dataContent`, and the encoder/decoder shared by the client core
 * and the reference server.
 *
 * Encoding follows the Java server (Gson): keys in the order
 * `bridge, type, dataContent, from, to, fp, QoS, typeu, sm`, null fields omitted.
 * Decoding follows Gson's leniency: missing keys take Java's zero values (`typeu: 0`, `sm: 0`,
 * `from: null`), numbers are accepted for string fields, numeric strings for number fields and
 * `"true"` for booleans; extra keys (such as the H5 client's `retryCount`) are ignored.
 */

/**
 * The type codes one by one, so the core's minified bundle writes each as its number (the minifier keeps
 * the keys of the public {@link MsgType} object); MsgType is built from them.
 */
export const TYPE_LOGIN = 0,
  TYPE_KEEP_ALIVE = 1,
  TYPE_DATA = 2,
  TYPE_LOGOUT = 3,
  TYPE_ACK = 4,
  TYPE_ECHO = 5,
  TYPE_LOGIN_RESPONSE = 50,
  TYPE_KEEP_ALIVE_RESPONSE = 51,
  TYPE_ERROR = 52,
  TYPE_ECHO_RESPONSE = 53,
  TYPE_KICKOUT = 54,
  TYPE_RECEIPT = 60;

/** Framework message types (`ProtocalType.C` / `ProtocalType.S`). */
export const MsgType = {
  LOGIN: TYPE_LOGIN,
  KEEP_ALIVE: TYPE_KEEP_ALIVE,
  DATA: TYPE_DATA,
  LOGOUT: TYPE_LOGOUT,
  ACK: TYPE_ACK,
  ECHO: TYPE_ECHO,
  LOGIN_RESPONSE: TYPE_LOGIN_RESPONSE,
  KEEP_ALIVE_RESPONSE: TYPE_KEEP_ALIVE_RESPONSE,
  ERROR: TYPE_ERROR,
  ECHO_RESPONSE: TYPE_ECHO_RESPONSE,
  KICKOUT: TYPE_KICKOUT,
  /** Our extension: the receiver's device has a message (sent only to clients that asked at login). */
  RECEIPT: TYPE_RECEIPT,
} as const;

/** A framework message type code. */
export type MsgTypeCode = (typeof MsgType)[keyof typeof MsgType];

/** The error code the server sends (in a type 52) for a frame that needs a login. */
export const ERROR_UNLOGIN = 301;
/** Our server's error code (in a type 52) before it closes for a shutdown: reconnect, to another node. */
export const ERROR_GOING_AWAY = 336;
/** Login capability bit (our extension, `caps` in the login): "send me device receipts (type 60)". */
export const CAP_RECEIPTS = 1;
/**
 * Login capability bit, with {@link CAP_RECEIPTS}: "a receipt due when you ACK my message may ride in
 * that ACK" (type 4 with `typeu` 60 and the receipt's time in `sm`). Read only when the server granted it.
 */
export const CAP_RECEIPT_IN_ACK = 2;

/** Kickout codes (`PKickoutInfo`). */
export const KickoutCode = { DUPLICATE_LOGIN: 1, ADMIN: 2 } as const;

/** The user id that stands for the server in `from` / `to`. */
export const SERVER_ID = '0';
/** The user id MobileIMSDK writes for "unset". */
export const UNSET_ID = '-1';

/** One MobileIMSDK frame, as it travels. */
export interface Protocal {
  bridge: boolean;
  type: number;
  dataContent: string | null;
  from: string | null;
  to: string | null;
  fp: string | null;
  QoS: boolean;
  typeu: number;
  sm: number;
}

/** Type 0 payload. */
export interface LoginInfo {
  loginUserId: string;
  loginToken: string;
  extra?: string | null;
  firstLoginTime: number;
  /** Our extension: the capability bits the client asks for; MobileIMSDK servers ignore it. */
  caps?: number;
}

/** Type 50 payload. */
export interface LoginResponse {
  code: number;
  firstLoginTime: number;
  /** Our server's answer to a login that sent `caps`: the capability bits granted (0 when absent). */
  caps: number;
  /** Our server's answer to a login that sent `caps`: the largest data frame it takes, in bytes (0 when absent). */
  maxMessageBytes: number;
}

/** Type 52 payload. */
export interface ErrorResponse {
  errorCode: number;
  errorMsg: string;
  /** Our server only: the fingerprint of the data frame this error refuses (null when absent). */
  fp: string | null;
  /** Our server only: the byte limit the refused frame broke (0 when absent). */
  limit: number;
}

/** Type 60 payload (our extension): the receiver's device acknowledged message `fp` at server time `at`. */
export interface Receipt {
  fp: string;
  at: number;
}

/** Type 54 payload. */
export interface KickoutInfo {
  code: number;
  reason?: string;
}

/** Thrown by the decoders for input that is not a valid frame or payload. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Builds a frame with MobileIMSDK's creation defaults for every key not given. */
export function createFrame(fields: Partial<Protocal> & { type: number }): Protocal {
  return {
    bridge: false,
    dataContent: null,
    from: UNSET_ID,
    to: UNSET_ID,
    fp: null,
    QoS: false,
    typeu: -1,
    sm: -1,
    ...fields,
  };
}

/** Serialises a frame as the Java server does: Gson key order, null fields omitted. */
export function encodeFrame(p: Protocal): string {
  let s = '{"bridge":' + !!p.bridge + ',"type":' + num(p.type);
  for (const key of STRING_KEYS) if (p[key] != null) s += ',"' + key + '":' + JSON.stringify(p[key]);
  return s + ',"QoS":' + !!p.QoS + ',"typeu":' + num(p.typeu) + ',"sm":' + num(p.sm) + '}';
}

/** The string keys of a frame in Gson's order, each written only when not null. */
const STRING_KEYS = ['dataContent', 'from', 'to', 'fp'] as const;

function num(n: number): string {
  return Number.isFinite(n) ? String(Math.trunc(n)) : '0';
}

/**
 * Parses one frame's text. Throws {@link ProtocolError} for anything the Java server would also refuse
 * (invalid JSON, a non-object, an object or array where a string or number belongs).
 */
export function decodeFrame(text: string): Protocal {
  const o = parseObject(text, 'frame');
  return {
    bridge: readBool(o, 'bridge'),
    type: readInt(o, 'type'),
    dataContent: readString(o, 'dataContent'),
    from: readString(o, 'from'),
    to: readString(o, 'to'),
    fp: readString(o, 'fp'),
    QoS: readBool(o, 'QoS'),
    typeu: readInt(o, 'typeu'),
    sm: readInt(o, 'sm'),
  };
}

/** Parses a JSON object, throwing {@link ProtocolError} with `what` in the message otherwise. */
export function parseObject(text: string | null, what: string): Record<string, unknown> {
  if (text == null) throw new ProtocolError(`${what}: missing`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ProtocolError(`${what}: invalid JSON`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ProtocolError(`${what}: not a JSON object`);
  return v as Record<string, unknown>;
}

/** Reads a string field the way Gson does: numbers and booleans become strings, null/absent is null. */
export function readString(o: Record<string, unknown>, key: string): string | null {
  const v = o[key];
  if (v == null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new ProtocolError(`"${key}" must be a string`);
}

/** Reads an integer field the way Gson does: numeric strings are accepted, null/absent is 0. */
export function readInt(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (v == null) return 0;
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || Math.trunc(n) !== n) throw new ProtocolError(`"${key}" must be an integer`);
  return n;
}

/** Reads a boolean field the way Gson does: the string "true" is true, null/absent is false. */
export function readBool(o: Record<string, unknown>, key: string): boolean {
  const v = o[key];
  if (v == null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return v.toLowerCase() === 'true';
  throw new ProtocolError(`"${key}" must be a boolean`);
}

/** Serialises a type-0 payload with Gson's key order; `extra` is omitted when absent. */
export function encodeLoginInfo(info: LoginInfo): string {
  const o: Record<string, unknown> = { loginUserId: info.loginUserId, loginToken: info.loginToken };
  if (info.extra != null) o.extra = info.extra;
  o.firstLoginTime = info.firstLoginTime;
  if (info.caps != null) o.caps = info.caps;
  return JSON.stringify(o);
}

/** Parses a type-0 payload; `loginUserId` is null when missing (MobileIMSDK then closes silently). */
export function decodeLoginInfo(text: string | null): Omit<LoginInfo, 'loginUserId' | 'loginToken'> & {
  loginUserId: string | null;
  loginToken: string | null;
} {
  const o = parseObject(text, 'login info');
  return {
    loginUserId: readString(o, 'loginUserId'),
    loginToken: readString(o, 'loginToken'),
    extra: readString(o, 'extra'),
    firstLoginTime: readInt(o, 'firstLoginTime'),
  };
}

/** Parses a type-50 payload; our extension's keys read 0 when absent (MobileIMSDK servers). */
export function decodeLoginResponse(text: string | null): LoginResponse {
  const o = parseObject(text, 'login response');
  const int = (key: string) => readInt(o, key);
  return { code: int('code'), firstLoginTime: int('firstLoginTime'), caps: int('caps'), maxMessageBytes: int('maxMessageBytes') };
}

/** Parses a type-52 payload; our extension's `fp` and `limit` read null and 0 when absent. */
export function decodeErrorResponse(text: string | null): ErrorResponse {
  const o = parseObject(text, 'error response');
  return { errorCode: readInt(o, 'errorCode'), errorMsg: readString(o, 'errorMsg') || '', fp: readString(o, 'fp'), limit: readInt(o, 'limit') };
}

/** Parses a type-60 payload (our extension). */
export function decodeReceipt(text: string | null): Receipt {
  const o = parseObject(text, 'receipt');
  return { fp: readString(o, 'fp') || '', at: readInt(o, 'at') };
}

/** Parses a type-54 payload; `reason` is present only when the server sent one. */
export function decodeKickoutInfo(text: string | null): KickoutInfo {
  const o = parseObject(text, 'kickout info');
  const reason = readString(o, 'reason');
  return reason == null ? { code: readInt(o, 'code') } : { code: readInt(o, 'code'), reason };
}

/** A random RFC 4122 version-4 UUID, the fingerprint format MobileIMSDK uses. */
export function createFingerprint(random: () => number): string {
  // Left to right, one draw per x (a hex digit) and per y (the variant: 8, 9, a or b). A loop rather
  // than a replace() with a callback: a third of the time, and every send makes one.
  let s = '';
  for (const c of 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx') s += c < 'x' ? c : '0123456789abcdef'[c < 'y' ? (random() * 16) | 0 : (random() * 4) | 8];
  return s;
}
