/**
 * An enrollment limit as the service and HTTP layer use it: `take` spends a token (0 when allowed, else the
 * seconds until one is available), `wait` only looks. Async, because with several instances the buckets live
 * in PostgreSQL (pg-cluster.ts); one instance keeps them in memory (`localRateLimit`).
 */
export interface RateLimit {
  take(key: string): Promise<number>;
  wait(key: string): Promise<number>;
}

/** A RateLimiter behind the RateLimit shape. */
export function localRateLimit(burst: number, perMinute: number): RateLimit {
  const l = new RateLimiter(burst, perMinute);
  return { take: (key) => Promise.resolve(l.take(key)), wait: (key) => Promise.resolve(l.wait(key)) };
}

/**
 * Token bucket per key (the client IP). Memory is bounded: past `maxKeys` the least recently refilled
 * bucket is forgotten, which at worst hands an attacker rotating through that many addresses a fresh
 * burst; the secret's entropy, not this limiter, is what makes guessing hopeless.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly perMinute: number,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes a token; returns 0 when allowed, else the seconds until one is available. */
  take(key: string): number {
    const b = this.refill(key);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return this.secondsUntilToken(b);
  }

  /** Like take, without taking: 0 while a token is available. */
  wait(key: string): number {
    const b = this.buckets.get(key);
    return b ? this.secondsUntilToken(this.refill(key)) : 0;
  }

  private secondsUntilToken(b: { tokens: number }): number {
    return b.tokens >= 1 ? 0 : Math.ceil(((1 - b.tokens) / this.perMinute) * 60);
  }

  private refill(key: string): { tokens: number; at: number } {
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: t };
    this.buckets.delete(key);
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 60_000) * this.perMinute);
    b.at = t;
    this.buckets.set(key, b);
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
    return b;
  }
}
