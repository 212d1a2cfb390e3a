/**
 * MobileIMSDK's "sense modes": how often the client beats, when it gives the link up, and when the server
 * expires an idle session (spec §7.1, §7.2). The numeric values are the MobileIMSDK-H5 constants.
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

const table: Record<SenseModeValue, SenseModeTimings> = {
  1: { intervalMs: 3000, timeoutMs: 5000, udpTimeoutMs: 10000, serverExpiryMs: 7000, udpServerExpiryMs: 10000 },
  2: { intervalMs: 5000, timeoutMs: 8000, udpTimeoutMs: null, serverExpiryMs: 11000, udpServerExpiryMs: null },
  3: { intervalMs: 10000, timeoutMs: 15000, udpTimeoutMs: 21000, serverExpiryMs: 15000, udpServerExpiryMs: 21000 },
  4: { intervalMs: 15000, timeoutMs: 20000, udpTimeoutMs: null, serverExpiryMs: 20000, udpServerExpiryMs: null },
  5: { intervalMs: 30000, timeoutMs: 35000, udpTimeoutMs: 61000, serverExpiryMs: 35000, udpServerExpiryMs: 62000 },
  6: { intervalMs: 60000, timeoutMs: 65000, udpTimeoutMs: 121000, serverExpiryMs: 65000, udpServerExpiryMs: 122000 },
  7: { intervalMs: 120000, timeoutMs: 125000, udpTimeoutMs: 241000, serverExpiryMs: 125000, udpServerExpiryMs: 242000 },
};

/** The timings of a sense mode; throws a `RangeError` for a value that is not one of {@link SenseMode}. */
export function senseModeTimings(mode: number): SenseModeTimings {
  const t = table[mode as SenseModeValue];
  if (!t) throw new RangeError(`senseMode must be one of SenseMode.MODE_3S … MODE_120S (1–7), got ${String(mode)}`);
  return t;
}
