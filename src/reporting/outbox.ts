import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../logging/logger.js';
import type { PostureReport } from '../protocol/report.js';
import { PROTOCOL_VERSION, reportEnvelopeSchema, type ReportEnvelope } from '../protocol/wire.js';
import { writeFileAtomic } from '../state/atomic.js';

/**
 * The durable outbox between a scan and the control plane. One file per report, each written with
 * writeFileAtomic (temp file, fsync, rename, fsync dir), so a SIGKILL or power cut at any instant leaves a
 * report either wholly there or not there: there is no torn record to repair. A report is acknowledged to
 * the caller only after its file is durable, and removed only after the server has accepted it, so
 * delivery is at-least-once; the server dedupes by reportId.
 *
 * Layout: `state.json` ({nextSeq, droppedPending}) and `r-<seq, 16 digits>.json` per report.
 */

const entrySchema = z.object({
  envelope: reportEnvelopeSchema,
  /** True when this report changed the access level against the report before it: kept longest when full. */
  transition: z.boolean(),
  enqueuedAt: z.iso.datetime(),
});
type Entry = z.infer<typeof entrySchema>;

const stateSchema = z.object({
  nextSeq: z.number().int().nonnegative(),
  droppedPending: z.number().int().nonnegative(),
});

export interface OutboxOptions {
  maxEntries?: number;
  maxBytes?: number;
  logger?: Logger;
}

export interface OutboxStats {
  entries: number;
  bytes: number;
  nextSeq: number;
  /** Drops not yet carried by an envelope. */
  droppedPending: number;
  /** Reports this process dropped (plus corrupt ones found at open), for metrics and tests. */
  droppedTotal: number;
}

interface Held {
  seq: number;
  file: string;
  bytes: number;
  entry: Entry;
}

const FILE_RE = /^r-(\d{16})\.json$/;
const fileFor = (seq: number): string => `r-${String(seq).padStart(16, '0')}.json`;

export class Outbox {
  private readonly held: Held[] = [];
  private nextSeq = 0;
  private droppedPending = 0;
  private droppedTotal = 0;
  private bytes = 0;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly maxEntries: number,
    private readonly maxBytes: number,
    private readonly logger: Logger | undefined,
  ) {}

  /**
   * Opens (and recovers) the outbox. Leftover temp files are from writes a crash interrupted, which never
   * returned to their caller, so they are deleted. An unreadable report file (disk corruption: the rename
   * protocol never produces one) is removed and counted as dropped, so the server hears about the gap.
   */
  static async open(dir: string, opts: OutboxOptions = {}): Promise<Outbox> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const box = new Outbox(dir, opts.maxEntries ?? 500, opts.maxBytes ?? 8 * 1024 * 1024, opts.logger);
    let state = { nextSeq: 0, droppedPending: 0 };
    let stateFound = false;
    try {
      state = stateSchema.parse(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')));
      stateFound = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        opts.logger?.warn('outbox state unreadable; rebuilding it from the reports on disk', { component: 'outbox', err });
      }
    }
    let corrupt = 0;
    for (const name of (await readdir(dir)).sort()) {
      if (name.endsWith('.tmp')) {
        await rm(join(dir, name), { force: true });
        continue;
      }
      const m = FILE_RE.exec(name);
      if (!m?.[1]) continue;
      const path = join(dir, name);
      try {
        const text = await readFile(path, 'utf8');
        const entry = entrySchema.parse(JSON.parse(text));
        const seq = Number(m[1]);
        if (entry.envelope.seq !== seq) throw new Error(`file name says seq ${seq}, content ${entry.envelope.seq}`);
        box.held.push({ seq, file: name, bytes: Buffer.byteLength(text), entry });
        box.bytes += Buffer.byteLength(text);
      } catch (err) {
        corrupt++;
        opts.logger?.error('outbox report unreadable; dropping it', { component: 'outbox', file: name, err });
        await rm(path, { force: true });
      }
    }
    const maxSeq = box.held.at(-1)?.seq ?? -1;
    box.nextSeq = Math.max(state.nextSeq, maxSeq + 1);
    // A report file at or past the recorded nextSeq means we crashed between writing it and recording that
    // it carried the pending drop count; the count travels in that report, so it is not pending any more.
    box.droppedPending = (maxSeq >= state.nextSeq ? 0 : state.droppedPending) + corrupt;
    box.droppedTotal = corrupt;
    // A crash between writing report N and recording nextSeq N+1 leaves maxSeq == state.nextSeq. Anything
    // further behind, or no state beside queued reports, means state.json was lost or restored from an
    // older backup: the queued files are the better witness, and saying so explains the jump to the server.
    const lost = !stateFound && box.held.length > 0;
    if (lost || maxSeq > state.nextSeq) {
      const why = lost ? 'is missing or unreadable' : `says the next seq is ${state.nextSeq}`;
      opts.logger?.warn(
        `outbox state ${why} but reports up to seq ${maxSeq} are queued (state lost or restored from a backup?); continuing at ${box.nextSeq} so that no sequence number is used twice`,
        { component: 'outbox' },
      );
    }
    // Recorded now, not at the next append: once the queued files are delivered and deleted, they could no
    // longer tell a later open where the sequence stands.
    if (box.nextSeq !== state.nextSeq || box.droppedPending !== state.droppedPending) {
      await box.writeState(box.nextSeq, box.droppedPending);
    }
    return box;
  }

  /** Runs operations one at a time: appends and acks touch the same files and counters. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Durably stores a report; resolves once it would survive a crash. */
  append(report: PostureReport, opts: { inResponseTo?: string } = {}): Promise<ReportEnvelope> {
    return this.serial(async () => {
      const seq = this.nextSeq;
      const last = this.held.at(-1);
      const envelope: ReportEnvelope = {
        protocolVersion: PROTOCOL_VERSION,
        reportId: randomUUID(),
        seq,
        dropped: 0,
        ...(opts.inResponseTo ? { inResponseTo: opts.inResponseTo } : {}),
        report,
      };
      const entry: Entry = {
        envelope,
        transition: last === undefined || last.entry.envelope.report.accessLevel !== report.accessLevel,
        enqueuedAt: new Date().toISOString(),
      };
      const size = Buffer.byteLength(JSON.stringify(entry)) + 16;
      const victims = this.chooseVictims(size);
      if (victims.length > 0) {
        let dropped = 0;
        for (const v of victims) dropped += 1 + v.entry.envelope.dropped;
        // Recorded before the files go, so a crash cannot lose the count.
        await this.writeState(seq, this.droppedPending + dropped);
        for (const v of victims) {
          await rm(join(this.dir, v.file), { force: true });
          this.held.splice(this.held.indexOf(v), 1);
          this.bytes -= v.bytes;
        }
        this.droppedPending += dropped;
        this.droppedTotal += victims.length;
        this.logger?.warn('outbox full; dropped older reports that newer ones supersede', { component: 'outbox', dropped });
      }
      envelope.dropped = this.droppedPending;
      const text = JSON.stringify(entry);
      const file = fileFor(seq);
      await writeFileAtomic(join(this.dir, file), text);
      this.held.push({ seq, file, bytes: Buffer.byteLength(text), entry });
      this.bytes += Buffer.byteLength(text);
      this.nextSeq = seq + 1;
      this.droppedPending = 0;
      await this.writeState(this.nextSeq, 0);
      return envelope;
    });
  }

  /**
   * Every report is a full snapshot, so any older one is superseded by the newest. Plain heartbeats go
   * first (oldest first); reports that changed the access level are history worth keeping and go last.
   * The newest report is never dropped.
   */
  private chooseVictims(incoming: number): Held[] {
    const victims: Held[] = [];
    let count = this.held.length + 1;
    let bytes = this.bytes + incoming;
    const order = [...this.held.filter((h) => !h.entry.transition), ...this.held.filter((h) => h.entry.transition)];
    for (const h of order) {
      if (count <= this.maxEntries && bytes <= this.maxBytes) break;
      victims.push(h);
      count--;
      bytes -= h.bytes;
    }
    return victims;
  }

  private async writeState(nextSeq: number, droppedPending: number): Promise<void> {
    await writeFileAtomic(join(this.dir, 'state.json'), JSON.stringify({ nextSeq, droppedPending }));
  }

  /**
   * Moves the sequence past `seq`, the newest the control plane says it already has from this device: the
   * local sequence went back (state lost or restored from a backup), and reports reusing old numbers would
   * look older than the ones they follow. Queued reports keep their numbers: one may have reached the server
   * already, and it recognises a retry by reportId and seq together. Returns the new next seq, or null when
   * the sequence was already past `seq`.
   */
  advancePast(seq: number): Promise<number | null> {
    return this.serial(async () => {
      if (seq < this.nextSeq) return null;
      await this.writeState(seq + 1, this.droppedPending);
      this.nextSeq = seq + 1;
      return this.nextSeq;
    });
  }

  /** The oldest undelivered reports, oldest first. */
  peek(limit = 1): ReportEnvelope[] {
    return this.held.slice(0, limit).map((h) => h.entry.envelope);
  }

  /**
   * Removes a delivered report. No directory fsync: if a crash undoes the unlink, the report is sent again
   * and the server recognises its reportId, which costs one request and loses nothing.
   */
  ack(reportId: string): Promise<boolean> {
    return this.serial(async () => {
      const i = this.held.findIndex((h) => h.entry.envelope.reportId === reportId);
      const h = this.held[i];
      if (!h) return false;
      await rm(join(this.dir, h.file), { force: true });
      this.held.splice(i, 1);
      this.bytes -= h.bytes;
      return true;
    });
  }

  /** Gives up on a report the server refuses for good (malformed); it is counted as dropped. */
  discard(reportId: string): Promise<boolean> {
    return this.serial(async () => {
      const i = this.held.findIndex((h) => h.entry.envelope.reportId === reportId);
      const h = this.held[i];
      if (!h) return false;
      await this.writeState(this.nextSeq, this.droppedPending + 1 + h.entry.envelope.dropped);
      await rm(join(this.dir, h.file), { force: true });
      this.held.splice(i, 1);
      this.bytes -= h.bytes;
      this.droppedPending += 1 + h.entry.envelope.dropped;
      this.droppedTotal += 1;
      return true;
    });
  }

  stats(): OutboxStats {
    return {
      entries: this.held.length,
      bytes: this.bytes,
      nextSeq: this.nextSeq,
      droppedPending: this.droppedPending,
      droppedTotal: this.droppedTotal,
    };
  }
}
