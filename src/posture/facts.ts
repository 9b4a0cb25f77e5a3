/** Where persistent facts live between runs; a cache, so failures to read or write only cost time. */
export interface FactPersistence {
  read(): Promise<Record<string, { version: string; value: unknown }>>;
  write(entries: Record<string, { version: string; value: unknown }>): Promise<void>;
}

/**
 * A memo of facts shared by the collectors of a scan. Static facts (hardware, OS release) are kept for a
 * TTL so a warm scan only re-reads what changes; volatile ones live for the duration of one scan, so two
 * checks that need the same probe (say lsblk) run it once.
 */
export class FactStore {
  private readonly entries = new Map<string, { expires: number; value: Promise<unknown> }>();
  private disk?: Promise<Map<string, { version: string; value: unknown }>>;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly staticTtlMs: number,
    private readonly now: () => number = Date.now,
    private readonly persistence?: FactPersistence,
  ) {}

  /**
   * A costly fact whose validity is known exactly: `version` names the inputs it was derived from (say the
   * mtimes of the package database), and the value is kept, on disk when persistence is set, until the
   * version changes. So a restart does not repeat a multi-second probe whose answer cannot have changed.
   */
  persistent<T>(family: string, version: string, load: () => Promise<T>): Promise<T> {
    this.dropOtherVersions(`persistent:${family}:`, version);
    return this.memo(`persistent:${family}:${version}`, Number.POSITIVE_INFINITY, async () => {
      const stored = this.persistence ? (await this.loadDisk()).get(family) : undefined;
      if (stored?.version === version) return stored.value as T;
      const value = await load();
      if (this.persistence) await this.saveDisk(family, version, value);
      return value;
    });
  }

  /**
   * Like `persistent`, but kept in memory only: for facts that are cheap enough to derive once per process
   * (or cannot be stored as JSON) yet costly enough not to derive every scan. A value `keep` refuses is
   * handed to the callers waiting for it but not remembered, for answers only some of which `version` covers.
   */
  versioned<T>(family: string, version: string, load: () => Promise<T>, keep: (value: T) => boolean = () => true): Promise<T> {
    const key = `versioned:${family}:${version}`;
    this.dropOtherVersions(`versioned:${family}:`, version);
    const value = this.memo(key, Number.POSITIVE_INFINITY, load);
    void value.then((v) => {
      if (!keep(v) && this.entries.get(key)?.value === value) this.entries.delete(key);
    }, () => undefined);
    return value;
  }

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

  /**
   * Only the newest version of a family is kept: keeping each one would grow without bound (the mount table,
   * one of the lsblk answer's inputs, changes with every container started).
   */
  private dropOtherVersions(prefix: string, version: string): void {
    for (const key of this.entries.keys()) {
      if (key.startsWith(prefix) && key !== `${prefix}${version}`) this.entries.delete(key);
    }
  }

  private loadDisk(): Promise<Map<string, { version: string; value: unknown }>> {
    const persistence = this.persistence;
    this.disk ??= persistence
      ? persistence.read().then(
          (entries) => new Map(Object.entries(entries)),
          () => new Map(),
        )
      : Promise.resolve(new Map());
    return this.disk;
  }

  private async saveDisk(family: string, version: string, value: unknown): Promise<void> {
    const map = await this.loadDisk();
    map.set(family, { version, value });
    const persistence = this.persistence;
    if (!persistence) return;
    // Writes are chained so two facts finishing together cannot interleave their renames.
    this.writing = this.writing.then(() => persistence.write(Object.fromEntries(map))).catch(() => undefined);
    await this.writing;
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
