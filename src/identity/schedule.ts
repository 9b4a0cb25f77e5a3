/**
 * When to renew: once less than `fraction` of the lifetime is left, shifted later by up to `jitter` of that
 * window so a fleet enrolled together spreads out. Shifting later (never earlier) keeps the promise that a
 * certificate is not renewed while more than `fraction` of it is left; with jitter <= 0.5 at least half of
 * the window remains for retries.
 */
export function renewalTime(notBefore: Date, notAfter: Date, fraction: number, jitter: number, random: number): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const windowStart = notAfter.getTime() - lifetime * fraction;
  return new Date(windowStart + lifetime * fraction * jitter * random);
}

/**
 * Delay before retry number `failures` (1-based): exponential from `initialMs`, capped at `maxMs`, with
 * "equal jitter" (half fixed, half random) so retries spread out but never collapse to zero.
 */
export function backoffDelay(failures: number, initialMs: number, maxMs: number, random: number): number {
  const exp = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return exp / 2 + (exp / 2) * random;
}
