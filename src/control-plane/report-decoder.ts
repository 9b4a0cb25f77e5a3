import { gunzipSync } from 'node:zlib';
import sjson from 'secure-json-parse';
import { z } from 'zod';
import type { EvaluatedResult } from '../policy/evaluate.js';
import type { Platform } from '../posture/types.js';
import { checkResultSchema, postureReportSchema } from '../protocol/report.js';
import { reportEnvelopeSchema, type ErrorCode } from '../protocol/wire.js';

/**
 * The report envelope as the server validates it. Evidence is whatever JSON.parse produced, which is JSON by
 * construction, so walking it through the recursive JsonValue union (half the validation time of a report)
 * proves nothing, and neither does a record schema, which copies every entry to check that the keys of a
 * parsed object are strings (a tenth of a decoder worker's time). It only has to be an object; everything
 * else is checked in full.
 */
const ingestEnvelopeSchema = reportEnvelopeSchema.extend({
  report: postureReportSchema.extend({
    results: z.array(
      checkResultSchema.extend({
        evidence: z.custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), {
          error: 'Invalid input: expected object',
        }),
      }),
    ),
  }),
});

/**
 * What the event loop needs of a validated report. The body itself is stored as it arrived, so the evidence,
 * two thirds of a report, never has to cross from the decoder worker or be parsed a second time.
 */
export interface ReportSummary {
  reportId: string;
  seq: number;
  dropped: number;
  inResponseTo?: string;
  generatedAt: string;
  /** The platform the report says it comes from; the server also expects the checks of the enrolled one. */
  platform: Platform;
  /** The OS the report names, for gateways' OS rules. */
  os: { id: string; name: string; version: string | null };
  results: EvaluatedResult[];
}

function summarize(env: z.infer<typeof ingestEnvelopeSchema>): ReportSummary {
  return {
    reportId: env.reportId,
    seq: env.seq,
    dropped: env.dropped,
    ...(env.inResponseTo === undefined ? {} : { inResponseTo: env.inResponseTo }),
    generatedAt: env.report.generatedAt,
    platform: env.report.device.platform,
    os: { id: env.report.device.os.id, name: env.report.device.os.name, version: env.report.device.os.version },
    results: env.report.results.map((r) => ({ id: r.id, title: r.title, status: r.status, ...(r.reason === undefined ? {} : { reason: r.reason }) })),
  };
}

export interface DecodeFailure {
  ok: false;
  status: number;
  code: ErrorCode;
  message: string;
}

/** One line naming the first problems, as every 400 of the API does. */
export function issuesMessage(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`)
    .join('; ');
}

/**
 * A JSON body as sent: plain, or gzip inflated in one call capped at the body limit, so a compression bomb
 * stops where a plain body would. Shared by the report decoder workers and every other JSON route.
 */
export function inflateBody(body: Uint8Array, encoding: string | undefined, limitBytes: number): { ok: true; text: string } | DecodeFailure {
  const enc = encoding?.trim().toLowerCase();
  if (enc === undefined || enc === '' || enc === 'identity') return { ok: true, text: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8') };
  if (enc !== 'gzip') return { ok: false, status: 415, code: 'bad-request', message: `unsupported Content-Encoding ${enc}; use gzip or none` };
  try {
    return { ok: true, text: gunzipSync(body, { maxOutputLength: limitBytes }).toString('utf8') };
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE'
      ? { ok: false, status: 413, code: 'payload-too-large', message: `decompressed body exceeds ${limitBytes} bytes` }
      : { ok: false, status: 400, code: 'bad-request', message: 'the body is not valid gzip' };
  }
}

/**
 * A report body from the wire to the summary of a validated envelope: inflating, parsing (with fastify's
 * prototype-poisoning rules) and validating are most of the CPU a report costs, and they run in worker
 * threads (report-decoder-pool.ts).
 */
export type DecodeResult = { ok: true; summary: ReportSummary } | DecodeFailure;

export function decodeReportBody(body: Uint8Array, encoding: string | undefined, limitBytes: number): DecodeResult {
  const inflated = inflateBody(body, encoding, limitBytes);
  if (!inflated.ok) return inflated;
  if (inflated.text.length === 0) return { ok: false, status: 400, code: 'bad-request', message: 'the body is empty' };
  let value: unknown;
  try {
    value = sjson.parse(inflated.text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch {
    return { ok: false, status: 400, code: 'bad-request', message: "Body is not valid JSON but content-type is set to 'application/json'" };
  }
  const r = ingestEnvelopeSchema.safeParse(value);
  if (!r.success) return { ok: false, status: 400, code: 'bad-request', message: issuesMessage(r.error) };
  return { ok: true, summary: summarize(r.data) };
}
