import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import winston from 'winston';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/logging/logger.js';
import type { Policy } from '../../src/policy/schema.js';
import { SqliteStorage } from '../../src/control-plane/sqlite-storage.js';
import { startControlPlane } from '../../src/control-plane/server.js';
import { silentLogger } from '../../src/logging/logger.js';
import { Outbox } from '../../src/reporting/outbox.js';
import { Reporter, type ReporterOptions } from '../../src/reporting/reporter.js';
import type { TlsIdentity } from '../../src/reporting/https-client.js';
import { reportHistorySchema } from '../../src/protocol/admin.js';
import { ADMIN_TOKEN, prepare } from '../helpers/control-plane.js';
import { call } from '../helpers/https.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { sampleReport } from '../helpers/report.js';
import { freePort } from '../helpers.js';

let pki: TestPki;
let identity: TlsIdentity;

beforeAll(async () => {
  pki = await createTestPki();
  const dev = await pki.device('dev-reporter-1');
  identity = { current: () => Promise.resolve({ cert: dev.certPem, key: dev.keyPem, ca: pki.rootPem }) };
});

function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  // Same typing quirk as src/logging/logger.ts: Console does extend TransportStream.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
  const logger = winston.createLogger({ level: 'debug', transports: [new winston.transports.Console({ silent: true })] });
  // A winston logger is itself a readable stream of the records it logs.
  logger.on('data', (info: { message?: unknown }) => {
    lines.push(JSON.stringify(info));
  });
  return { logger, lines };
}


async function reporterFor(baseUrl: string, extra: Partial<ReporterOptions> = {}) {
  const outbox = await Outbox.open(await mkdtemp(join(tmpdir(), 'vigil-rep-')));
  const log = capturingLogger();
  let policyVersion = '2026.11.1';
  const applied: Policy[] = [];
  const reporter = new Reporter({
    baseUrl,
    outbox,
    identity,
    logger: log.logger,
    scan: () => Promise.resolve(sampleReport()),
    policyVersion: () => policyVersion,
    applyPolicy: (p) => {
      applied.push(p);
      policyVersion = p.version;
      return Promise.resolve();
    },
    backoff: { baseMs: 50, capMs: 300 },
    requestTimeoutMs: 1000,
    maxResponseBytes: 256 * 1024,
    directiveStream: false,
    ...extra,
  });
  return { reporter, outbox, log, applied };
}

type Mode = 'ok' | '500' | 'not-json' | 'huge-chunked' | 'huge-declared' | 'stall' | 'bad-policy';

/** A misbehaving control plane: the same TLS setup as the real one, answers chosen per test. */
async function fakeServer() {
  let mode: Mode = 'ok';
  let previousSeq: number | null | undefined;
  const hits: Record<string, number> = {};
  const received: string[] = [];
  const open = new Set<ServerResponse>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      chunks.push(c);
    });
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString();
      hits[mode] = (hits[mode] ?? 0) + 1;
      open.add(res);
      res.on('close', () => {
        open.delete(res);
      });
      if (req.url === '/v1/policy') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ schemaVersion: 1, name: 'broken', version: '9', checks: { x: 'mandatory' } }));
        return;
      }
      const env = JSON.parse(body) as { reportId: string };
      switch (mode) {
        case 'ok':
        case 'bad-policy':
          received.push(env.reportId);
          res.writeHead(200, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              protocolVersion: 1,
              reportId: env.reportId,
              duplicate: false,
              accessLevel: 'full',
              directives: { reportIntervalSeconds: 300, policyVersion: mode === 'bad-policy' ? '9' : '2026.11.1', recheck: null },
              ...(previousSeq === undefined ? {} : { previousSeq }),
            }),
          );
          return;
        case '500':
          res.writeHead(500).end('{"error":"internal","message":"boom"}');
          return;
        case 'not-json':
          res.writeHead(200, { 'content-type': 'application/json' }).end('<html>proxy error</html>');
          return;
        case 'huge-declared':
          res.writeHead(200, { 'content-length': String(50 * 1024 * 1024) });
          res.write(Buffer.alloc(64 * 1024, 0x20));
          return;
        case 'huge-chunked': {
          // 50 MB, honouring backpressure so only the client's limit can stop it early.
          res.writeHead(200, { 'content-type': 'application/json' });
          const chunk = Buffer.alloc(64 * 1024, 0x20);
          let sent = 0;
          const pump = (): void => {
            while (sent < 50 * 1024 * 1024 && !res.destroyed) {
              sent += chunk.length;
              if (!res.write(chunk)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end();
          };
          pump();
          return;
        }
        case 'stall':
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"protocolVersion":1,');
          return;
      }
    });
  };
  const server: Server = createServer({ key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.rootPem, requestCert: true, rejectUnauthorized: true }, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    url: `https://127.0.0.1:${port}`,
    hits,
    received,
    setMode(m: Mode) {
      mode = m;
    },
    /** What acks say the server received from this device before each report. */
    setPreviousSeq(seq: number | null | undefined) {
      previousSeq = seq;
    },
    async close() {
      for (const r of open) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => {
        server.close(() => {
          r();
        });
      });
    },
  };
}

describe('Reporter when the server has seen later reports than the agent is sending', () => {
  it('warns once in one line and moves the outbox sequence past what the server has', async () => {
    const srv = await fakeServer();
    const { reporter, outbox, log } = await reporterFor(srv.url);
    try {
      srv.setPreviousSeq(null);
      expect((await reporter.enqueue(sampleReport())).seq).toBe(0);
      expect((await reporter.flush(5000)).delivered).toBe(1);
      // The state dir came back from a backup: the server already has seq 250 from this device.
      srv.setPreviousSeq(250);
      await reporter.enqueue(sampleReport());
      expect((await reporter.flush(5000)).delivered).toBe(1);
      const warned = log.lines.filter((l) => l.includes('report sequence went back'));
      expect(warned).toHaveLength(1);
      expect((JSON.parse(warned[0] ?? '{}') as { message: string }).message).toBe(
        'report sequence went back: this agent sent seq 1 but the control plane had already received seq 250 from this device; the state dir was probably restored from a backup or its outbox state lost; continuing at 251',
      );
      expect(outbox.stats().nextSeq).toBe(251);
      srv.setPreviousSeq(1);
      expect((await reporter.enqueue(sampleReport())).seq).toBe(251);
      expect((await reporter.flush(5000)).delivered).toBe(1);
      expect(log.lines.filter((l) => l.includes('report sequence went back'))).toHaveLength(1);
    } finally {
      await reporter.stop();
      await srv.close();
    }
  });

  it('takes no action on an older server that sends no previousSeq', async () => {
    const srv = await fakeServer();
    const { reporter, outbox, log } = await reporterFor(srv.url);
    try {
      await reporter.enqueue(sampleReport());
      expect((await reporter.flush(5000)).delivered).toBe(1);
      expect(outbox.stats().nextSeq).toBe(1);
      expect(log.lines.join('')).not.toMatch(/went back/);
    } finally {
      await reporter.stop();
      await srv.close();
    }
  });
});

describe('Reporter against a misbehaving server', () => {
  it.each<[Mode, RegExp]>([
    ['500', /HTTP 500/],
    ['not-json', /not JSON/],
    ['huge-declared', /too-large/],
    ['huge-chunked', /too-large/],
    ['stall', /timeout/],
  ])('stays bounded on %s, keeps the report, retries, then delivers', async (mode, logged) => {
    const srv = await fakeServer();
    const { reporter, outbox, log } = await reporterFor(srv.url);
    try {
      srv.setMode(mode);
      const heapBefore = process.memoryUsage().heapUsed;
      const t0 = Date.now();
      reporter.start();
      const env = await reporter.enqueue(sampleReport());
      await expect.poll(() => srv.hits[mode] ?? 0, { timeout: 8000, interval: 50 }).toBeGreaterThanOrEqual(2);
      expect(outbox.peek(1)[0]?.reportId).toBe(env.reportId);
      expect(log.lines.join('')).toMatch(logged);
      // Two attempts at most one 1 s timeout each, plus backoff: nothing hangs.
      expect(Date.now() - t0).toBeLessThan(6000);
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(40 * 1024 * 1024);
      srv.setMode('ok');
      await expect.poll(() => outbox.stats().entries, { timeout: 5000, interval: 50 }).toBe(0);
      expect(srv.received).toContain(env.reportId);
    } finally {
      await reporter.stop();
      await srv.close();
    }
  });

  it('rejects an invalid policy from the server and keeps the old one', async () => {
    const srv = await fakeServer();
    const { reporter, log, applied } = await reporterFor(srv.url);
    try {
      srv.setMode('bad-policy');
      reporter.start();
      await reporter.enqueue(sampleReport());
      await expect.poll(() => log.lines.join(''), { timeout: 5000 }).toMatch(/invalid policy; keeping the current one/);
      expect(applied).toEqual([]);
    } finally {
      await reporter.stop();
      await srv.close();
    }
  });
});

describe('Reporter with the real control plane', () => {
  it('queues while the server is down and delivers every report exactly once when it is back', async () => {
    const port = await freePort();
    const p = await prepare({ listen: `127.0.0.1:${port}` }, pki);
    const storage = new SqliteStorage(p.config.dataDir);
    await storage.enrollDevice({ id: 'dev-reporter-1', facts: sampleReport().device, secretId: 'test', now: Date.now() });
    await storage.close();

    const acks: boolean[] = [];
    // A request that times out after the server stored it comes back `duplicate: true`, which is correct but
    // not what this test is about; the server's first requests wait for its workers to start, slow on a busy box.
    const { reporter, outbox } = await reporterFor(`https://127.0.0.1:${port}`, { onDelivered: (a) => acks.push(a.duplicate), requestTimeoutMs: 10_000 });
    reporter.start();
    const ids = [];
    for (let i = 0; i < 10; i++) ids.push((await reporter.enqueue(sampleReport())).reportId);
    await new Promise((r) => setTimeout(r, 600));
    expect(outbox.stats().entries).toBe(10);

    const cp = await startControlPlane(p.config, { logger: silentLogger() });
    try {
      await expect.poll(() => outbox.stats().entries, { timeout: 10_000, interval: 100 }).toBe(0);
      const hist = reportHistorySchema.parse(
        (await call(pki.rootPem, `${cp.url}/v1/admin/devices/dev-reporter-1/reports?limit=100`, { token: ADMIN_TOKEN })).json,
      );
      expect(hist.reports.map((r) => r.reportId).sort()).toEqual([...ids].sort());
      expect(hist.reports.map((r) => r.seq).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(acks.filter((d) => d)).toEqual([]);
    } finally {
      await reporter.stop();
      await cp.close();
    }
  });

  it('re-checks on demand and applies a pushed policy via the directive stream', async () => {
    const p = await prepare({}, pki);
    const storage = new SqliteStorage(p.config.dataDir);
    await storage.enrollDevice({ id: 'dev-reporter-1', facts: sampleReport().device, secretId: 'test', now: Date.now() });
    await storage.close();
    const cp = await startControlPlane(p.config, { logger: silentLogger(), ssePingMs: 1000 });
    let scans = 0;
    const rechecks: string[] = [];
    const { reporter, outbox, applied } = await reporterFor(cp.url, {
      directiveStream: true,
      scan: () => {
        scans++;
        return Promise.resolve(sampleReport());
      },
      onRecheck: (id) => rechecks.push(id),
    });
    try {
      reporter.start();
      await reporter.enqueue(sampleReport());
      await expect.poll(() => outbox.stats().entries, { timeout: 5000 }).toBe(0);
      await new Promise((r) => setTimeout(r, 300)); // let the stream connect

      const t0 = Date.now();
      const r = await call(pki.rootPem, `${cp.url}/v1/admin/devices/dev-reporter-1/recheck`, { method: 'POST', token: ADMIN_TOKEN });
      const { requestId } = r.json as { requestId: string };
      await expect.poll(() => rechecks, { timeout: 3000, interval: 20 }).toContain(requestId);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(scans).toBeGreaterThanOrEqual(1);
      await expect
        .poll(async () => ((await call(pki.rootPem, `${cp.url}/v1/admin/devices/dev-reporter-1`, { token: ADMIN_TOKEN })).json as { directives: { recheck: unknown } }).directives.recheck, { timeout: 5000 })
        .toBeNull();

      const current = (await call(pki.rootPem, `${cp.url}/v1/policy`, { token: ADMIN_TOKEN })).json as Policy;
      const next = { ...current, version: '2026.12.7', checks: { ...current.checks, firewall: 'critical' } };
      expect((await call(pki.rootPem, `${cp.url}/v1/admin/policy`, { method: 'PUT', body: next, token: ADMIN_TOKEN })).status).toBe(200);
      await expect.poll(() => applied.map((x) => x.version), { timeout: 3000, interval: 20 }).toEqual(['2026.12.7']);
    } finally {
      await reporter.stop();
      await cp.close();
    }
  });
});

describe('Reporter process killed mid-send', () => {
  it('loses nothing and the server stores nothing twice', async () => {
    const p = await prepare({}, pki);
    const storage = new SqliteStorage(p.config.dataDir);
    await storage.enrollDevice({ id: 'dev-reporter-1', facts: sampleReport().device, secretId: 'test', now: Date.now() });
    await storage.close();
    const cp = await startControlPlane(p.config, { logger: silentLogger() });
    const dev = await identity.current();
    const files = { cert: join(p.dir, 'dev.crt'), key: join(p.dir, 'dev.key'), root: join(p.dir, 'root.crt') };
    await writeFile(files.cert, dev.cert);
    await writeFile(files.key, dev.key);
    const outboxDir = join(p.dir, 'outbox');
    const child = join(import.meta.dirname, 'reporter-child.ts');
    const appended: string[] = [];
    const runChild = (count: number, killAfterDeliveries: number | null) =>
      new Promise<string>((resolve) => {
        const proc = spawn(process.execPath, ['--import', 'tsx', child, outboxDir, cp.url, files.cert, files.key, files.root, String(count)], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        let delivered = 0;
        proc.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const lines = out.split('\n');
          out = lines.pop() ?? '';
          for (const line of lines) {
            const [what, , id] = line.split(' ');
            if (what === 'appended' && id) appended.push(id);
            if (what === 'delivered' && killAfterDeliveries !== null && ++delivered === killAfterDeliveries) {
              setTimeout(() => proc.kill('SIGKILL'), Math.random() * 5);
            }
          }
        });
        proc.on('exit', (code, signal) => {
          resolve(signal ?? String(code));
        });
      });
    try {
      expect(await runChild(30, 5)).toBe('SIGKILL');
      expect(appended).toHaveLength(30);
      expect(await runChild(0, null)).toBe('0');
      const hist = reportHistorySchema.parse(
        (await call(pki.rootPem, `${cp.url}/v1/admin/devices/dev-reporter-1/reports?limit=100`, { token: ADMIN_TOKEN })).json,
      );
      expect(hist.reports).toHaveLength(30);
      expect(hist.reports.map((r) => r.reportId).sort()).toEqual([...appended].sort());
    } finally {
      await cp.close();
    }
  }, 60_000);
});
