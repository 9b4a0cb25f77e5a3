import { EventHub } from './events.js';
import { localRateLimit, type RateLimit } from './rate-limit.js';

/** Periodic jobs that must not run on two instances at once. */
export type ClusterJob = 'sweep' | 'prune';

/**
 * What changes when several control-plane instances share one database: how publications reach the streams
 * held by other instances (the hub), which instance runs a periodic job, and where the enrollment limits'
 * buckets live. One instance (SQLite) needs none of it: `localCluster`. PostgreSQL: `pgCluster`.
 */
export interface Cluster {
  hub: EventHub;
  /** Runs `fn` unless another instance is running this job right now; false when it was skipped. */
  exclusive(job: ClusterJob, fn: () => Promise<void>): Promise<boolean>;
  /** A token-bucket limit named `name`, shared by every instance. */
  rateLimit(name: string, burst: number, perMinute: number): RateLimit;
  /** The cluster's own housekeeping (forgotten rate-limit buckets), run by the prune job; returns rows removed. */
  prune(now: number): Promise<number>;
  close(): Promise<void>;
}

export function localCluster(): Cluster {
  const hub = new EventHub();
  return {
    hub,
    exclusive: async (_job, fn) => {
      await fn();
      return true;
    },
    rateLimit: (_name, burst, perMinute) => localRateLimit(burst, perMinute),
    // In-memory buckets bound themselves (RateLimiter's maxKeys).
    prune: () => Promise.resolve(0),
    close: () => hub.close(),
  };
}
