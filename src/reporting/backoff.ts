export interface BackoffOptions {
  baseMs: number;
  capMs: number;
}

/**
 * Exponential backoff with "equal jitter": half the step is fixed, half random. The fixed half keeps a
 * struggling server from being hit at once again; the random half spreads a fleet that failed together.
 */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const step = Math.min(o.capMs, o.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + random() * (step / 2));
}
