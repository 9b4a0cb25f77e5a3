import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface IdentityWatchOptions {
  /** The agent's state dir; the identity lives in `identity/`, and its pointer in `identity/current.json`. */
  stateDir: string;
  /** Called (never concurrently) when the pointer file appeared, changed or went away. */
  onChange(): Promise<void>;
  /**
   * Safety-net poll of the pointer's stat. inotify misses nothing on a local disk, but a watch cannot
   * be placed on a directory that does not exist yet and is lost when the directory is replaced.
   */
  pollMs?: number;
  /** Poll used when fs.watch is not available at all (some network and container filesystems). */
  fallbackPollMs?: number;
  /** Several files change per enrollment; wait for the burst to end. */
  settleMs?: number;
  /** Files directly in the state dir whose changes count too (what `vigil enroll` saved). */
  alsoFiles?: readonly string[];
}

/** What identifies one version of a file without reading it. */
export function statKey(s: { ino: number; size: number; mtimeMs: number } | undefined): string {
  return s ? `${s.ino}:${s.size}:${s.mtimeMs}` : 'absent';
}

/**
 * Notices `vigil enroll` / `vigil unenroll` made by another process (MDM installs and starts the daemon
 * first and enrolls later). Idle cost is an inotify watch plus one stat per poll; the identity itself is
 * only re-read by the caller when the pointer's stat changed.
 */
export class IdentityWatch {
  private readonly identityDir: string;
  private readonly pointer: string;
  private readonly watchers = new Map<string, FSWatcher>();
  private poll: NodeJS.Timeout | null = null;
  private settle: NodeJS.Timeout | null = null;
  private lastKey: string | undefined;
  private checking: Promise<void> | null = null;
  private again = false;
  private stopped = true;
  private watchWorks = true;

  constructor(private readonly o: IdentityWatchOptions) {
    this.identityDir = join(o.stateDir, 'identity');
    this.pointer = join(this.identityDir, 'current.json');
  }

  /** Records the pointer's current state as the baseline (the caller has just read it) and starts watching. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.lastKey = await this.currentKey();
    // The identity dir made, removed or replaced: a watch on the old one would see nothing more.
    this.watchDir(this.o.stateDir, ['identity', ...(this.o.alsoFiles ?? [])], (file) => {
      if (file === null || file === 'identity') this.unwatch(this.identityDir);
    });
    this.watchDir(this.identityDir, ['current.json']);
    this.schedulePoll();
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const t of [this.poll, this.settle]) if (t) clearTimeout(t);
    this.poll = this.settle = null;
  }

  /** Resolves once any check in progress (and its onChange) has finished. */
  async idle(): Promise<void> {
    while (this.checking) await this.checking;
  }

  private unwatch(dir: string): void {
    this.watchers.get(dir)?.close();
    this.watchers.delete(dir);
  }

  private watchDir(dir: string, names: readonly string[], onEntry?: (file: string | null) => void): void {
    if (this.stopped || this.watchers.has(dir)) return;
    let w: FSWatcher;
    try {
      w = watch(dir, { persistent: false }, (_event, file) => {
        // A null name means the platform could not say which entry changed; check anyway.
        if (file === null || names.includes(file)) {
          onEntry?.(file);
          this.nudge();
        }
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A missing directory is normal before the first enrollment; the state-dir watch sees it appear.
      if (code !== 'ENOENT') this.watchWorks = false;
      return;
    }
    w.on('error', () => {
      // The directory was removed or replaced: drop the watch; the next check places a new one.
      this.unwatch(dir);
      this.nudge();
    });
    this.watchers.set(dir, w);
  }

  private nudge(): void {
    if (this.stopped) return;
    if (this.settle) clearTimeout(this.settle);
    this.settle = setTimeout(() => {
      this.settle = null;
      this.check();
    }, this.o.settleMs ?? 300);
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    const ms = this.watchWorks ? (this.o.pollMs ?? 60_000) : (this.o.fallbackPollMs ?? 5000);
    this.poll = setTimeout(() => {
      this.poll = null;
      this.check();
      this.schedulePoll();
    }, ms);
    this.poll.unref();
  }

  private async currentKey(): Promise<string> {
    const keyOf = async (path: string): Promise<string> => {
      try {
        return statKey(await stat(path));
      } catch {
        return 'absent';
      }
    };
    const keys = await Promise.all([this.pointer, ...(this.o.alsoFiles ?? []).map((f) => join(this.o.stateDir, f))].map(keyOf));
    return keys.join('|');
  }

  /** Whether a change arrived while the last check ran (and clears that). */
  private takeAgain(): boolean {
    const again = this.again;
    this.again = false;
    return again;
  }

  private check(): void {
    if (this.checking) {
      this.again = true;
      return;
    }
    this.checking = (async () => {
      for (let more = true; more && !this.stopped; more = this.takeAgain()) {
        this.watchDir(this.identityDir, ['current.json']);
        const key = await this.currentKey();
        if (key === this.lastKey) continue;
        this.lastKey = key;
        await this.o.onChange();
      }
    })().finally(() => {
      this.checking = null;
    });
  }
}
