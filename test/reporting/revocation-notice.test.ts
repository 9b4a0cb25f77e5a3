import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RevocationNotifier } from '../../src/reporting/revocation-notice.js';
import type { TlsIdentity } from '../../src/reporting/https-client.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';
import { freePort } from '../helpers.js';

let pki: TestPki;
let identity: TlsIdentity;

beforeAll(async () => {
  pki = await createTestPki();
  const dev = await pki.device('dev-revoked-1');
  identity = { current: () => Promise.resolve({ cert: dev.certPem, key: dev.keyPem, ca: pki.rootPem }) };
});

interface Hit {
  path: string;
  method: string;
  body: unknown;
  clientCn: string | undefined;
}

/** A control plane that requires the device certificate and answers each request with the next scripted reply. */
async function server(replies: { status: number; body?: string }[], port?: number): Promise<{ url: string; hits: Hit[]; close: () => Promise<void> }> {
  const hits: Hit[] = [];
  const srv: Server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem, ca: pki.rootPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // An https server's request socket is a TLSSocket; the type of IncomingMessage does not say so.
      const socket = req.socket as unknown as Pick<TLSSocket, 'getPeerCertificate'>;
      const cn: unknown = socket.getPeerCertificate().subject.CN;
      hits.push({ path: req.url ?? '', method: req.method ?? '', body: JSON.parse(Buffer.concat(chunks).toString()), clientCn: typeof cn === 'string' ? cn : undefined });
      const reply = replies.shift() ?? { status: 204 };
      res.writeHead(reply.status, reply.body === undefined ? {} : { 'content-type': 'application/json' }).end(reply.body);
    });
  });
  const p = port ?? (await freePort());
  await new Promise<void>((r) => srv.listen(p, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${p}`,
    hits,
    close: () =>
      new Promise<void>((r) => {
        srv.close(() => {
          r();
        });
      }),
  };
}

async function until(probe: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function notifier(url: string, reported: string[]): RevocationNotifier {
  const n = new RevocationNotifier({
    baseUrl: url,
    identity,
    markReported: (serial) => {
      reported.push(serial);
      return Promise.resolve();
    },
    timeoutMs: 2000,
    backoff: { baseMs: 20, capMs: 100 },
  });
  cleanups.push(() => n.stop());
  return n;
}

describe('telling the control plane that the CA refused the device certificate', () => {
  it('POSTs once per serial over mTLS with the protocol body, and records it on 204', async () => {
    const s = await server([{ status: 204 }]);
    cleanups.push(s.close);
    const reported: string[] = [];
    const n = notifier(s.url, reported);
    n.notify('0A1B2C');
    n.notify('0A1B2C');
    await until(() => reported.length === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(s.hits).toEqual([
      { path: '/v1/identity/revoked', method: 'POST', body: { protocolVersion: 1, serial: '0a1b2c', reason: 'ca-refused-renewal' }, clientCn: 'device-dev-revoked-1' },
    ]);
    expect(reported).toEqual(['0A1B2C']);
  });

  it('retries 5xx and 429 with backoff; a 403 device-revoked also counts as done', async () => {
    const s = await server([
      { status: 503, body: '{"error":"unavailable","message":"busy"}' },
      { status: 429 },
      { status: 403, body: '{"error":"device-revoked","message":"device x was revoked"}' },
    ]);
    cleanups.push(s.close);
    const reported: string[] = [];
    notifier(s.url, reported).notify('FF');
    await until(() => reported.length === 1);
    expect(s.hits).toHaveLength(3);
    expect(reported).toEqual(['FF']);
  });

  it('retries while the server is unreachable, then delivers', async () => {
    const port = await freePort();
    const reported: string[] = [];
    notifier(`https://127.0.0.1:${port}`, reported).notify('01');
    // Several connection refusals meanwhile (backoff 20..100 ms).
    await new Promise((r) => setTimeout(r, 300));
    expect(reported).toEqual([]);
    const s = await server([{ status: 204 }], port);
    cleanups.push(s.close);
    await until(() => reported.length === 1);
    expect(s.hits).toHaveLength(1);
  });

  it('gives up without recording on an answer repeating cannot change (404: an older control plane)', async () => {
    const s = await server([{ status: 404, body: '{"error":"not-found","message":"no route"}' }]);
    cleanups.push(s.close);
    const reported: string[] = [];
    notifier(s.url, reported).notify('02');
    await until(() => s.hits.length === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(s.hits).toHaveLength(1);
    expect(reported).toEqual([]);
  });
});
