/**
 * mobileimsdk-ts: a MobileIMSDK v6 compatible IM client. Pair {@link IMClient} with a platform adapter
 * (`mobileimsdk-ts/adapters/browser`, `…/wx`, `…/uni`, …).
 */
export { IMClient } from './client';
export type { ClientEvents, IncomingMessage, LoginParams, LoginResult, SendOptions, StateReason } from './client-types';
export type { OutboxStore, OutgoingMessage, SendReceipt, StoredMessage } from './qos-outbox';
export { IMError } from './errors';
export type { IMErrorCode, IMErrorDetails } from './errors';
export { ClientState } from './state';
export type { ClientStateName } from './state';
export { SenseMode } from './sense-mode';
export type { SenseModeValue, SenseModeTimings } from './sense-mode';
export type { IMClientOptions } from './options';
export type { Clock } from './clock';
export { systemClock } from './clock';
export type { Logger } from './logger';
export type { LifecycleEvent, SocketAdapter, SocketConnection, SocketHandlers } from './transport';
export { MsgType, KickoutCode, ERROR_UNLOGIN, ProtocolError, createFrame, encodeFrame, decodeFrame } from './protocol';
export type { Protocal, LoginInfo, LoginResponse, ErrorResponse, KickoutInfo, Receipt } from './protocol';
