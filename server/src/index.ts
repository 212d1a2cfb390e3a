/** Public surface of the MobileIMSDK-compatible reference server. */
export { createServer } from './server';
export type { IMServer, SendOptions, SendResult, BoundPorts } from './server';
export type { ServerOptions, ListenOptions } from './options';
export type { ServerHooks, BeforeVerdict } from './hooks';
export type { ConnectionInfo, TransportName } from './session';
export type { OfflineStore, StoredMessage } from './offline-store';
export { SqliteOfflineStore } from './offline-store';
export type { MetricsSnapshot } from './metrics';
export type { Logger, LogLevel } from './logger';
export { createConsoleLogger, silentLogger } from './logger';
export { ServerErrorCode } from './errors';
export type { QosOptions } from './qos-s2c';
export type { RateLimitOptions } from './rate-limit';
export type { TlsOptions } from './tls';
