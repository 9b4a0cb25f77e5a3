import { randomUUID } from 'node:crypto';
import { fdatasync } from 'node:fs';
import { request } from 'node:https';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logging/logger.js';
import { startControlPlane, type RunningControlPlane } from '../../src/control-plane/server.js';
import { SqliteStorage } from '../../src/control-plane/sqlite-storage.js';
import { reportHistorySchema } from '../../src/protocol/admin.js';
import { errorBodySchema, reportAckSchema } from '../../src/protocol/wire.js';
import { ADMIN_TOKEN, prepare } from '../helpers/control-plane.js';
import { call } from '../helpers/https.js';
import type { Issued, TestPki } from '../helpers/pki.js';
import { sampleReport } from '../helpers/report.js';

const realSync = promisify(fdatasync);

/**
 * Stands in for fdatasync on the WAL: while held, flushes wait (the real one runs on release), so a test
 * can see what the server does between a commit and its flush; `fail` makes flushes fail as a dying disk's do.
 */
class WalGate {
  held = false;
  fail: Error | null = null;
  calls = 0;
  private waiting: (() => void)[] = [];

  readonly sync = (fd: number): Promise<void> => {
    this.calls++;
    const run = (): Promise<void> => (this.fail ? Promise.reject(this.fail) : realSync(fd));
    if (!this.held) return run();
    return new Promise((resolve, reject) => this.waiting.push(() => void run().then(resolve, reject)));
  };

  get pending(): number {
    return this.waiting.length;
  }

  release(): void {
    this.held = false;
    for (const w of this.waiting.splice(0)) w();
  }
}

interface Running {
  cp: RunningControlPlane;
  pki: TestPki;
  dev: Issued;
  gate: WalGate;
}

let running: Running | null = null;
afterEach(async () => {
  running?.gate.release();
  await running?.cp.close();
  running = null;
});

async function start(): Promise<Running> {
  const p = await prepare();
  const gate = new WalGate();
  const storage = new SqliteStorage(p.config.dataDir, { syncWal: gate.sync });
  await storage.enrollDevice({ id: 'dev-durable', facts: sampleReport().device, secretId: 'test', now: Date.now() });
  const cp = await startControlPlane(p.config, { logger: silentLogger(), storage });
  running = { cp, pki: p.pki, dev: await p.pki.device('dev-durable'), gate };
  return running;
}

/** A report as the agent sends it: gzipped, over its own mTLS connection. */
function post(r: Running, reportId: string, seq: number): Promise<{ status: number; json: unknown }> {
  const body = gzipSync(JSON.stringify({ protocolVersion: 1, reportId, seq, dropped: 0, report: sampleReport() }));
  return new Promise((resolve, reject) => {
    const req = request(`${r.cp.url}/v1/reports`, {
      method: 'POST',
      ca: r.pki.rootPem,
      cert: r.dev.certPem,
      key: r.dev.keyPem,
      agent: false,
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(body.length) },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) as unknown });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((res) => setTimeout(res, 10));
  expect(cond()).toBe(true);
}

describe('report ingest is acknowledged only once durable', () => {
  it('answers a batch only after its WAL flush, and stores a report sent twice at once only once', async () => {
    const r = await start();
    r.gate.held = true;
    const dup = randomUUID();
    let answered = 0;
    const requests = [post(r, dup, 1), post(r, dup, 1), post(r, randomUUID(), 2), post(r, randomUUID(), 3)].map((p) =>
      p.then((res) => {
        answered++;
        return res;
      }),
    );
    await until(() => r.gate.pending > 0);
    // Committed but not flushed: give the server every chance to answer early.
    await new Promise((res) => setTimeout(res, 100));
    expect(answered).toBe(0);
    r.gate.release();
    const res = await Promise.all(requests);
    expect(res.map((x) => x.status)).toEqual([200, 200, 200, 200]);
    const acks = res.map((x) => reportAckSchema.parse(x.json));
    // The same report twice: one stored, the other told it is a duplicate; both get the same verdict.
    expect(acks.slice(0, 2).map((a) => a.duplicate).sort()).toEqual([false, true]);
    expect(acks[0]?.accessLevel).toBe(acks[1]?.accessLevel);
    expect(acks.slice(2).map((a) => a.duplicate)).toEqual([false, false]);
    const hist = await call(r.pki.rootPem, `${r.cp.url}/v1/admin/devices/dev-durable/reports`, { token: ADMIN_TOKEN });
    expect(reportHistorySchema.parse(hist.json).reports.map((x) => x.seq).sort()).toEqual([1, 2, 3]);
    // A retry after the ack is a duplicate too, and the stored report reads back from the gzip body.
    const again = await post(r, dup, 1);
    expect(reportAckSchema.parse(again.json).duplicate).toBe(true);
    const detail = await call(r.pki.rootPem, `${r.cp.url}/v1/admin/devices/dev-durable`, { token: ADMIN_TOKEN });
    expect((detail.json as { latestReport: { device: { hostname: string } } }).latestReport.device.hostname).toBe('ws-0142');
  });

  it('gathers reports that arrive during a flush into one transaction committed when it ends', async () => {
    const r = await start();
    const seqs = async () => {
      const hist = await call(r.pki.rootPem, `${r.cp.url}/v1/admin/devices/dev-durable/reports`, { token: ADMIN_TOKEN });
      return reportHistorySchema.parse(hist.json).reports.map((x) => x.seq).sort();
    };
    r.gate.held = true;
    const first = post(r, randomUUID(), 1);
    await until(() => r.gate.pending > 0);
    const later = [post(r, randomUUID(), 2), post(r, randomUUID(), 3)];
    await new Promise((res) => setTimeout(res, 150));
    // Only the first batch is committed; the others wait for the disk, uncommitted and unanswered.
    expect(await seqs()).toEqual([1]);
    r.gate.release();
    expect((await Promise.all([first, ...later])).map((x) => x.status)).toEqual([200, 200, 200]);
    expect(await seqs()).toEqual([1, 2, 3]);
  });

  it('fails every report of a batch whose flush fails, and acknowledges nothing after that', async () => {
    const r = await start();
    const ready = () => call(r.pki.rootPem, `${r.cp.url}/ready`);
    expect((await ready()).status).toBe(200);
    r.gate.held = true;
    r.gate.fail = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    const requests = [post(r, randomUUID(), 1), post(r, randomUUID(), 2), post(r, randomUUID(), 3)];
    await until(() => r.gate.pending > 0);
    r.gate.release();
    const res = await Promise.all(requests);
    expect(res.map((x) => x.status)).toEqual([500, 500, 500]);
    expect(res.map((x) => errorBodySchema.parse(x.json).error)).toEqual(['internal', 'internal', 'internal']);
    // The page cache may now hold what the disk lost: a later flush "succeeding" would prove nothing.
    r.gate.fail = null;
    const later = await post(r, randomUUID(), 4);
    expect(later.status).toBe(500);
    // The load balancer stops sending devices here.
    const down = await ready();
    expect([down.status, errorBodySchema.parse(down.json).error]).toEqual([503, 'not-ready']);
    expect(errorBodySchema.parse(down.json).message).toContain('EIO');
  });
});
