/**
 * A memo of facts shared by the collectors of a scan. Static facts (hardware, OS release) are kept for a
 * TTL so a warm scan only re-reads what changes; volatile ones live for the duration of one scan, so two
 * checks that need the same probe (say lsblk) run it once.
 */
export class FactStore {
  private readonly entries = new Map<string, { expires: number; value: Promise<unknown> }>();

  constructor(
    private readonly staticTtlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A fact that changes rarely: cached for the static TTL. Failed loads are not cached. */
  static<T>(key: string, load: () => Promise<T>): Promise<T> {
    return this.memo(`static:${key}`, this.staticTtlMs, load);
  }

  /** A fact that may change any time: cached only until `beginScan` is called again. */
  scan<T>(key: string, load: () => Promise<T>): Promise<T> {
    return this.memo(`scan:${key}`, Number.POSITIVE_INFINITY, load);
  }

  /** Drops the per-scan facts; static ones stay until their TTL runs out. */
  beginScan(): void {
    for (const key of this.entries.keys()) if (key.startsWith('scan:')) this.entries.delete(key);
  }

  /** Forgets everything, so the next scan is cold. */
  clear(): void {
    this.entries.clear();
  }

  private memo<T>(key: string, ttlMs: number, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit && hit.expires > this.now()) return hit.value as Promise<T>;
    const value = load();
    this.entries.set(key, { expires: this.now() + ttlMs, value });
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    return value;
  }
}
