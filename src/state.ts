/** The states one by one, so the core's minified bundle writes each as its string; ClientState is built from them. */
export const IDLE = 'idle',
  CONNECTING = 'connecting',
  AUTHENTICATING = 'authenticating',
  ONLINE = 'online',
  RECONNECTING = 'reconnecting',
  CLOSED = 'closed';

/**
 * The client's connection states and the moves between them.
 *
 * ```
 *            login()              socket open              type 50, code 0
 *   idle ───────────> connecting ───────────> authenticating ─────────────> online
 *     │                  ^   │                     │                          │
 *     │                  │   └── socket closed, ───┴── login timeout ─────┐   │ keep-alive timeout,
 *     │                  │       during a reconnect                       v   │ socket closed, error 301,
 *     │                  └──────── backoff timer / reconnectNow() ─── reconnecting <─┘ network offline;
 *     │                            (error 336 / close 1001: a random wait under 1 s)     error 336, close 1001
 *     │
 *     └── any state ── logout(), kickout, rejected login, first login failed, retries exhausted,
 *                      destroy() ──> closed ── login() ──> connecting
 * ```
 */
export const ClientState = { IDLE, CONNECTING, AUTHENTICATING, ONLINE, RECONNECTING, CLOSED } as const;

/** One of the {@link ClientState} values. */
export type ClientStateName = (typeof ClientState)[keyof typeof ClientState];

const moves: Record<ClientStateName, readonly ClientStateName[]> = {
  idle: ['connecting', 'closed'],
  connecting: ['authenticating', 'reconnecting', 'closed'],
  authenticating: ['online', 'reconnecting', 'closed'],
  online: ['reconnecting', 'closed'],
  reconnecting: ['connecting', 'closed'],
  closed: ['connecting'],
};

/** Whether the state machine allows moving from `from` to `to` (the test suite checks every move). */
export function canMove(from: ClientStateName, to: ClientStateName): boolean {
  return moves[from].indexOf(to) >= 0;
}
