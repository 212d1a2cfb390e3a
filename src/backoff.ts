/**
 * Full-jitter exponential backoff: a uniformly random delay between 0 and
 * `min(maxDelayMs, minDelayMs * 2^attempt)`, so that clients cut off together do not return together.
 * `attempt` counts from 0.
 */
export function backoffDelay(attempt: number, minDelayMs: number, maxDelayMs: number, random: () => number): number {
  const ceiling = Math.min(maxDelayMs, minDelayMs * Math.pow(2, Math.min(attempt, 30)));
  return Math.floor(random() * ceiling);
}
