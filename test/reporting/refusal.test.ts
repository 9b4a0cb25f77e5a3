import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Outbox } from '../../src/reporting/outbox.js';
import { Reporter, type ReporterOptions } from '../../src/reporting/reporter.js';
import { classifyAnswer, parseRetryAfter } from '../../src/reporting/server-response.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { sampleReport } from '../helpers/report.js';
import { capturingLogger } from '../helpers/logger.js';

/*
 * How the reporter treats a control plane that says no: a real fastify HTTPS server with mTLS answers
 * each POST /v1/reports with the status chosen by the test. Error bodies have the control plane's shape
 * ({"error", "message"}, src/control-plane/http.ts and service.ts).
 */

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

let pki: TestPki;
let app: FastifyInstance;
let baseUrl: string;
let answer: Answer = { status: 200 };
let hits = 0;

beforeAll(async () => {
  pki = await createTestPki();
  app = Fastify({ https: { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.rootPem, requestCert: true, rejectUnauthorized: true } });
  // Reports arrive gzipped; the answer does not depend on the body, so it is taken as bytes.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
    done(null, body);
  });
  app.post('/v1/reports', (req, reply) => {
    hits++;
    if (answer.status !== 200) return reply.code(answer.status).headers(answer.headers ?? {}).send(answer.body ?? '');
    const env = JSON.parse(gunzipSync(req.body as Buffer).toString('utf8')) as { reportId: string };
    return reply.send({
      protocolVersion: 1,
      reportId: env.reportId,
      duplicate: false,
      accessLevel: 'full',
      directives: { reportIntervalSeconds: 300, policyVersion: '2026.11.1', recheck: null },
    });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  baseUrl = `https://localhost:${addr.port}`;
});

afterAll(async () => {
  await app.close();
});

async function reporter(extra: Partial<ReporterOptions> = {}) {
  const outbox = await Outbox.open(await mkdtemp(join(tmpdir(), 'vigil-refusal-')));
  const log = capturingLogger();
  const dev = await pki.device('dev-refusal-1');
  const r = new Reporter({
    baseUrl,
    outbox,
    identity: { current: () => Promise.resolve({ cert: dev.certPem, key: dev.keyPem, ca: pki.rootPem }) },
    logger: log.logger,
    scan: () => Promise.resolve(sampleReport()),
    policyVersion: () => '2026.11.1',
    applyPolicy: () => Promise.resolve(),
    backoff: { baseMs: 50, capMs: 200 },
    requestTimeoutMs: 2000,
    directiveStream: false,
    ...extra,
  });
  return { r, outbox, log };
}

const wait = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

describe('classifyAnswer', () => {
  it('sorts statuses into transient and the three kinds of refusal', () => {
    const kind = (s: number): string => {
      const a = classifyAnswer(s, {}, '', 0);
      return a.kind === 'refused' ? a.refusal : a.kind;
    };
    expect([500, 502, 503, 504, 408, 429].map(kind)).toEqual(Array(6).fill('transient'));
    expect([401, 403].map(kind)).toEqual(['device', 'device']);
    expect([400, 413].map(kind)).toEqual(['report', 'report']);
    expect([404, 405, 415, 422, 301].map(kind)).toEqual(Array(5).fill('endpoint'));
  });

  it('reads Retry-After as seconds or an HTTP date, bounded', () => {
    const now = Date.parse('2026-11-23T12:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Mon, 23 Nov 2026 11:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('999999', now)).toBe(3_600_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('vigil report --once against a refusing control plane (flush)', () => {
  const cases: [number, unknown, RegExp][] = [
    [401, { error: 'client-certificate-rejected', message: 'the client certificate is not trusted: expired' }, /refused the device certificate \(HTTP 401 client-certificate-rejected: .*expired\).*vigil enroll/],
    [403, { error: 'device-revoked', message: 'device dev-refusal-1 was revoked' }, /refused the device certificate \(HTTP 403 device-revoked: device dev-refusal-1 was revoked\).*vigil enroll/],
    [400, { error: 'bad-request', message: 'seq: expected number' }, /refused the report itself \(HTTP 400 bad-request: seq: expected number\)/],
    [413, { error: 'payload-too-large', message: 'request body exceeds 1048576 bytes' }, /refused the report itself \(HTTP 413 payload-too-large/],
    [404, { error: 'not-found', message: 'no route POST /v1/reports' }, /answered HTTP 404 not-found.*reporting\.controlPlaneUrl/],
  ];
  for (const [status, body, message] of cases) {
    const reportRefused = status === 400 || status === 413;
    it(`stops at the first ${status}, says what to do, and ${reportRefused ? 'drops the refused report' : 'keeps the report'}`, async () => {
      answer = { status, body };
      hits = 0;
      const { r, outbox } = await reporter();
      await r.enqueue(sampleReport());
      const t0 = Date.now();
      const result = await r.flush(10_000);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(hits).toBe(1);
      expect(result.delivered).toBe(0);
      expect(result.refused).toMatch(message);
      // A report the server calls malformed will never be taken; keeping it would block every later one.
      expect(outbox.stats().entries).toBe(reportRefused ? 0 : 1);
      if (reportRefused) expect(result.refused).toMatch(/dropped from the outbox/);
      await r.stop();
    });
  }

  it('retries 503 with backoff and delivers once the server recovers', async () => {
    answer = { status: 503, body: { error: 'unavailable', message: 'closing' } };
    hits = 0;
    const { r, outbox } = await reporter();
    await r.enqueue(sampleReport());
    setTimeout(() => (answer = { status: 200 }), 400);
    const result = await r.flush(10_000);
    expect(result.delivered).toBe(1);
    expect(result.refused).toBeNull();
    expect(hits).toBeGreaterThan(1);
    expect(outbox.stats().entries).toBe(0);
    await r.stop();
  });

  it('waits as long as a 429 Retry-After asks, but never past its own timeout', async () => {
    answer = { status: 429, headers: { 'retry-after': '1' }, body: { error: 'rate-limited', message: 'retry in 1 s' } };
    hits = 0;
    const a = await reporter();
    await a.r.enqueue(sampleReport());
    const t0 = Date.now();
    const flushed = a.r.flush(10_000);
    // Recovers once the 429 has been served, however long the first request took to arrive.
    await expect.poll(() => hits, { interval: 10 }).toBeGreaterThan(0);
    answer = { status: 200 };
    const ok = await flushed;
    expect(ok.delivered).toBe(1);
    // The 50 ms backoff would have retried long before; the server asked for a second.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    await a.r.stop();

    answer = { status: 429, headers: { 'retry-after': '3600' } };
    const b = await reporter();
    await b.r.enqueue(sampleReport());
    const t1 = Date.now();
    const late = await b.r.flush(600);
    expect(Date.now() - t1).toBeLessThan(1500);
    expect(late.refused).toBeNull();
    expect(late.lastError).toMatch(/HTTP 429/);
    expect(b.outbox.stats().entries).toBe(1);
    await b.r.stop();
  });
});

describe('the daemon reporter against a refusing control plane', () => {
  it('does not hot-loop on 403, logs it once, and resumes when the certificate changes', async () => {
    answer = { status: 403, body: { error: 'device-revoked', message: 'device dev-refusal-1 was revoked' } };
    hits = 0;
    const { r, outbox, log } = await reporter();
    r.start();
    await r.enqueue(sampleReport());
    await wait(800);
    expect(hits).toBe(1);
    await r.enqueue(sampleReport());
    await wait(300);
    // Still asleep on the long refusal interval: a new report does not make it ask again.
    expect(hits).toBe(1);
    expect(outbox.stats().entries).toBe(2);

    r.retryNow();
    await wait(500);
    expect(hits).toBe(2);
    expect(log.lines.filter((l) => l.includes('refused the device certificate'))).toHaveLength(1);

    answer = { status: 200 };
    r.retryNow();
    await wait(800);
    expect(outbox.stats().entries).toBe(0);
    expect(log.lines.some((l) => l.includes('control plane accepts reports again'))).toBe(true);
    await r.stop();
  });

  it('drops a report refused as malformed (400) so it cannot block later ones', async () => {
    answer = { status: 400, body: { error: 'bad-request', message: 'report: invalid' } };
    hits = 0;
    const { r, outbox, log } = await reporter();
    r.start();
    await r.enqueue(sampleReport());
    await wait(500);
    expect(outbox.stats().entries).toBe(0);
    expect(log.lines.some((l) => l.includes('refused a report for good; dropping it'))).toBe(true);
    answer = { status: 200 };
    await r.enqueue(sampleReport());
    await wait(500);
    expect(outbox.stats().entries).toBe(0);
    await r.stop();
  });
});
