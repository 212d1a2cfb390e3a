/** Public surface of the MobileIMSDK-compatible reference server. */
export { createServer } from './server';
export type { IMServer, SendOptions, SendResult, BoundPorts, HealthReport, ReadinessReport } from './server';
export type { ServerOptions, ListenOptions, AdminHttpLimits, ClusterOptions } from './options';
export type { ServerHooks, BeforeVerdict } from './hooks';
export type { ConnectionInfo, TransportName } from './session';
export type { OfflineStore, StoredMessage, ExpiredMessage, StoreHealth, OfflineStoreRefusal, SqliteStoreOptions, StoreClock } from './offline-store';
export { SqliteOfflineStore, OfflineStoreError } from './offline-store';
export { DataDirError } from './data-dir';
export type { MetricsSnapshot } from './metrics';
export type { Logger, LogLevel, LogFormat, LoggerOptions } from './logger';
export { createConsoleLogger, createLogger, defaultNodeId, silentLogger } from './logger';
export { ServerErrorCode } from './errors';
export type { QosOptions } from './qos-s2c';
export type { RateLimitOptions } from './rate-limit';
export type { AuthOptions } from './auth';
export type { JwtAuthOptions } from './auth-jwt';
export type { WebhookAuthOptions } from './auth-webhook';
export type { TlsOptions } from './tls';
