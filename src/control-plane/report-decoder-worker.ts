import { parentPort } from 'node:worker_threads';
import { decodeReportBody } from './report-decoder.js';

export interface DecodeRequest {
  id: number;
  body: Uint8Array;
  encoding: string | undefined;
  limitBytes: number;
}

const port = parentPort;
if (port) {
  port.on('message', (m: DecodeRequest) => {
    port.postMessage({ id: m.id, result: decodeReportBody(m.body, m.encoding, m.limitBytes) });
  });
}
