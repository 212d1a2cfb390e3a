import { DEV } from './dev';

/**
 * MobileIMSDK's "sense modes": how often the client beats, when it gives the link up, and when the server
 * expires an idle session. The numeric values are the MobileIMSDK-H5 constants.
 */
export const SenseMode = {
  MODE_3S: 1,
  MODE_5S: 2,
  MODE_10S: 3,
  MODE_15S: 4,
  MODE_30S: 5,
  MODE_60S: 6,
  MODE_120S: 7,
} as const;

/** One of the {@link SenseMode} values. */
export type SenseModeValue = (typeof SenseMode)[keyof typeof SenseMode];

/** The timings of one sense mode, all in milliseconds. */
export interface SenseModeTimings {
  /** Client keep-alive interval. */
  intervalMs: number;
  /** Client: the link is dead when no reply arrived for this long (TCP and WebSocket clients). */
  timeoutMs: number;
  /** Client over UDP: the same, or null where MobileIMSDK has no UDP variant of the mode. */
  udpTimeoutMs: number | null;
  /** Server: a TCP or WebSocket session idle this long is closed. */
  serverExpiryMs: number;
  /** Server: a UDP session idle this long is closed, or null where there is no UDP variant. */
  udpServerExpiryMs: number | null;
}

// Per mode, as the client uses it: keep-alive interval, timeout. Only these are in the core bundle.
const client: Record<SenseModeValue, readonly number[]> = {
  1: [3000, 5000],
  2: [5000, 8000],
  3: [10000, 15000],
  4: [15000, 20000],
  5: [30000, 35000],
  6: [60000, 65000],
  7: [120000, 125000],
};

// Per mode, the client's timeout over UDP (0 = no UDP variant); apart, as only senseModeTimings reads it.
const udpClient: Record<SenseModeValue, number> = { 1: 10000, 2: 0, 3: 21000, 4: 0, 5: 61000, 6: 121000, 7: 241000 };

// Per mode, as the server uses it: TCP/WebSocket idle expiry, UDP idle expiry (0 = no UDP variant).
const server: Record<SenseModeValue, readonly number[]> = {
  1: [7000, 10000],
  2: [11000, 0],
  3: [15000, 21000],
  4: [20000, 0],
  5: [35000, 62000],
  6: [65000, 122000],
  7: [125000, 242000],
};

/** The client's keep-alive interval and timeout of a sense mode; a `RangeError` for an unknown mode. */
export function keepAliveTimings(mode: number): { intervalMs: number; timeoutMs: number } {
  const t = client[mode as SenseModeValue];
  if (!t) throw new RangeError(DEV ? `senseMode must be one of SenseMode.MODE_3S … MODE_120S (1–7), got ${String(mode)}` : 'invalid senseMode');
  return { intervalMs: t[0], timeoutMs: t[1] };
}

/** Every timing of a sense mode, client and server; a `RangeError` for an unknown mode. */
export function senseModeTimings(mode: number): SenseModeTimings {
  const { intervalMs, timeoutMs } = keepAliveTimings(mode);
  const udp = udpClient[mode as SenseModeValue];
  const [expiry, udpExpiry] = server[mode as SenseModeValue];
  return { intervalMs, timeoutMs, udpTimeoutMs: udp || null, serverExpiryMs: expiry, udpServerExpiryMs: udpExpiry || null };
}
