import { EventEmitter } from 'node:events';

export interface Job {
  name: string;
  /** Does the work; errors are reported through the 'error' event and the job stays scheduled. */
  run(): Promise<void>;
  /** Milliseconds until the next run, asked after each run (so a job can follow NotAfter or a server's interval). */
  nextDelayMs(): number;
  /** Run at once when the machine wakes from sleep (a big jump in wall-clock time). */
  runOnWake?: boolean;
}

interface Entry {
  job: Job;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
  dueAt: number;
}

/**
 * The daemon's one place for periodic work: scans, certificate renewal, reporting. Each job re-arms
 * itself after it finishes, so a slow run never overlaps the next one. Timers do not advance while a
 * laptop sleeps, so a watchdog compares wall-clock time with the monotonic clock and re-runs
 * wake-sensitive jobs when the gap says the machine slept.
 */
export class Scheduler extends EventEmitter<{ error: [job: string, err: unknown]; wake: [sleptMs: number] }> {
  private readonly entries = new Map<string, Entry>();
  private watchdog?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly wakeThresholdMs = 60_000, private readonly watchdogMs = 15_000) {
    super();
  }

  add(job: Job, firstDelayMs = 0): void {
    if (this.entries.has(job.name)) throw new Error(`job ${job.name} is already scheduled`);
    const entry: Entry = { job, dueAt: Date.now() + firstDelayMs };
    this.entries.set(job.name, entry);
    this.arm(entry, firstDelayMs);
    this.startWatchdog();
  }

  /** Runs a job now (e.g. "check now"), unless it is already running, and re-arms it afterwards. */
  async trigger(name: string): Promise<void> {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`no job named ${name}`);
    if (entry.running) {
      await entry.running;
      return;
    }
    clearTimeout(entry.timer);
    await this.fire(entry);
  }

  /** Milliseconds until each job's next run, for status output. */
  schedule(): Record<string, number> {
    const now = Date.now();
    return Object.fromEntries([...this.entries].map(([name, e]) => [name, Math.max(0, e.dueAt - now)]));
  }

  /** Cancels timers and waits for runs in progress, so shutdown never cuts a state write in half. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watchdog);
    for (const e of this.entries.values()) clearTimeout(e.timer);
    await Promise.allSettled([...this.entries.values()].flatMap((e) => (e.running ? [e.running] : [])));
  }

  private arm(entry: Entry, delayMs: number): void {
    if (this.stopped) return;
    const delay = Math.max(0, Math.min(delayMs, 2 ** 31 - 1));
    entry.dueAt = Date.now() + delay;
    entry.timer = setTimeout(() => void this.fire(entry), delay);
  }

  private async fire(entry: Entry): Promise<void> {
    if (this.stopped) return;
    const running = entry.job.run().catch((err: unknown) => {
      this.emit('error', entry.job.name, err);
    });
    entry.running = running;
    await running;
    entry.running = undefined;
    this.arm(entry, entry.job.nextDelayMs());
  }

  private startWatchdog(): void {
    if (this.watchdog) return;
    let lastWall = Date.now();
    let lastMono = performance.now();
    this.watchdog = setInterval(() => {
      const wall = Date.now();
      const mono = performance.now();
      const slept = wall - lastWall - (mono - lastMono);
      lastWall = wall;
      lastMono = mono;
      if (slept < this.wakeThresholdMs) return;
      this.emit('wake', slept);
      for (const e of this.entries.values()) {
        if (e.job.runOnWake && !e.running) {
          clearTimeout(e.timer);
          void this.fire(e);
        }
      }
    }, this.watchdogMs);
    this.watchdog.unref();
  }
}
