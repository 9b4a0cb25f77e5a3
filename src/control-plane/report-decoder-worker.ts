import { parentPort } from 'node:worker_threads';
import { decodeReportBody, type DecodeResult } from './report-decoder.js';

export interface DecodeRequest {
  id: number;
  body: Uint8Array;
  encoding: string | undefined;
  limitBytes: number;
}

/** Requests travel in batches, one message per event-loop turn each way: a message costs more than a small report. */
export type DecodeBatch = DecodeRequest[];
export type DecodedBatch = { id: number; result: DecodeResult }[];

const port = parentPort;
if (port) {
  port.on('message', (batch: DecodeBatch) => {
    port.postMessage(batch.map((m) => ({ id: m.id, result: decodeReportBody(m.body, m.encoding, m.limitBytes) })) satisfies DecodedBatch);
  });
}
