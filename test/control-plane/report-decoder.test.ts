import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeReportBody } from '../../src/control-plane/report-decoder.js';
import { ReportDecoderPool } from '../../src/control-plane/report-decoder-pool.js';
import { sampleReport } from '../helpers/report.js';

const LIMIT = 512 * 1024;
const ID = randomUUID();
const envelope = { protocolVersion: 1, reportId: ID, seq: 1, dropped: 0, report: sampleReport() };
const text = JSON.stringify(envelope);

describe('decodeReportBody', () => {
  it('inflates, parses and validates a report, plain or gzipped', () => {
    for (const [body, enc] of [[Buffer.from(text), undefined], [gzipSync(text), 'gzip'], [Buffer.from(text), ' Identity ']] as const) {
      const r = decodeReportBody(body, enc, LIMIT);
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.summary).toEqual({
          reportId: ID,
          seq: 1,
          dropped: 0,
          generatedAt: envelope.report.generatedAt,
          platform: 'linux',
          os: { id: envelope.report.device.os.id, name: envelope.report.device.os.name, version: envelope.report.device.os.version },
          results: envelope.report.results.map(({ id, title, status, reason }) => ({ id, title, status, ...(reason === undefined ? {} : { reason }) })),
        });
      }
    }
  });

  it('answers each bad body with the status and code the API documents', () => {
    const bomb = gzipSync(JSON.stringify({ ...envelope, padding: ' '.repeat(2 * LIMIT) }));
    const cases: [Buffer, string | undefined, number, string][] = [
      [Buffer.from('x'), 'br', 415, 'unsupported Content-Encoding br'],
      [Buffer.from('not gzip'), 'gzip', 400, 'not valid gzip'],
      [bomb, 'gzip', 413, `exceeds ${LIMIT} bytes`],
      [Buffer.from(''), undefined, 400, 'empty'],
      [Buffer.from('{"reportId": '), undefined, 400, 'not valid JSON'],
      // fastify's default parser refuses these too: a later merge could turn them into prototype pollution.
      [Buffer.from('{"__proto__": {"polluted": true}}'), undefined, 400, 'not valid JSON'],
      [Buffer.from('{"constructor": {"prototype": {"polluted": true}}}'), undefined, 400, 'not valid JSON'],
      [Buffer.from(JSON.stringify({ ...envelope, seq: 'one' })), undefined, 400, 'seq: '],
      ...[[1], 'x', null].map((evidence): [Buffer, undefined, number, string] => [
        Buffer.from(JSON.stringify({ ...envelope, report: { ...envelope.report, results: [{ ...envelope.report.results[0], evidence }] } })),
        undefined,
        400,
        'report.results.0.evidence: Invalid input: expected object',
      ]),
    ];
    for (const [body, enc, status, message] of cases) {
      const r = decodeReportBody(body, enc, LIMIT);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.status).toBe(status);
        expect(r.message).toContain(message);
      }
    }
  });
});

describe('ReportDecoderPool (real worker threads)', () => {
  const pool = new ReportDecoderPool(2);
  afterAll(() => pool.close());

  it('decodes concurrently in workers and keeps each answer with its request', async () => {
    const ids = Array.from({ length: 20 }, () => randomUUID());
    const bodies = ids.map((reportId, i) => gzipSync(JSON.stringify({ ...envelope, reportId, seq: i + 1 })));
    const results = await Promise.all(bodies.map((b) => pool.decode(b, 'gzip', LIMIT)));
    expect(results.map((r) => (r.ok ? r.summary.reportId : r.message))).toEqual(ids);
    const bad = await pool.decode(Buffer.from('{'), undefined, LIMIT);
    expect(bad).toMatchObject({ ok: false, status: 400 });
  });

  it('answers 500 once closed instead of hanging', async () => {
    const closed = new ReportDecoderPool(1);
    await closed.close();
    expect(await closed.decode(Buffer.from(text), undefined, LIMIT)).toMatchObject({ ok: false, status: 500 });
  });
});
