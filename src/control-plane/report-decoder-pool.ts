import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { DecodeFailure, DecodeResult } from './report-decoder.js';
import type { DecodeBatch, DecodedBatch } from './report-decoder-worker.js';
import { spawnWorker } from './spawn-worker.js';

interface Slot {
  worker: Worker;
  pending: Map<number, (r: DecodeResult) => void>;
  /** Requests of this event-loop turn, posted together when it ends. */
  outbox: DecodeBatch;
  transfer: ArrayBuffer[];
}

const WORKER_FAILED: DecodeFailure = { ok: false, status: 500, code: 'internal', message: 'internal error' };

/**
 * Worker threads that decode report bodies (see decodeReportBody), so that the event loop only does TLS,
 * HTTP and SQLite. Ingest is bound by one core otherwise; with this a second core takes a third of the
 * work. Requests go to the workers in turn and are posted once per event-loop turn: under load one turn
 * reads several reports, and messages to and from workers were about 8% of the event loop's time when each
 * report had its own. A worker that dies fails only the requests it held and is replaced.
 */
export class ReportDecoderPool {
  private readonly slots: Slot[] = [];
  private next = 0;
  private seq = 0;
  private closed = false;
  private flushScheduled = false;

  constructor(size = Math.max(1, Math.min(4, availableParallelism() - 1))) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  decode(body: Uint8Array, encoding: string | undefined, limitBytes: number): Promise<DecodeResult> {
    if (this.closed) return Promise.resolve(WORKER_FAILED);
    const slot = this.slots[this.next++ % this.slots.length];
    if (!slot) return Promise.resolve(WORKER_FAILED);
    const id = ++this.seq;
    return new Promise((resolve) => {
      slot.pending.set(id, resolve);
      // An exact copy, transferred rather than cloned: fastify's body is a view into a shared 8 KB pool that
      // a clone would copy whole, and a transfer costs the event loop half as much as cloning even the copy.
      const own = new Uint8Array(body);
      slot.outbox.push({ id, body: own, encoding, limitBytes });
      slot.transfer.push(own.buffer);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const slot of this.slots) {
      if (slot.outbox.length === 0) continue;
      slot.worker.postMessage(slot.outbox, slot.transfer);
      slot.outbox = [];
      slot.transfer = [];
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const worker = spawnWorker('report-decoder-worker');
    const slot: Slot = { worker, pending: new Map(), outbox: [], transfer: [] };
    worker.on('message', (batch: DecodedBatch) => {
      for (const m of batch) {
        const done = slot.pending.get(m.id);
        slot.pending.delete(m.id);
        done?.(m.result);
      }
    });
    const fail = (): void => {
      for (const done of slot.pending.values()) done(WORKER_FAILED);
      slot.pending.clear();
      slot.outbox = [];
      slot.transfer = [];
      if (this.closed) return;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots[i] = this.spawn();
    };
    worker.on('error', fail);
    worker.on('exit', () => {
      if (this.slots.includes(slot)) fail();
    });
    return slot;
  }
}
