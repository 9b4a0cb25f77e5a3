import { createServer, type Server } from 'node:https';
import type { ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Follower } from '../../src/authz/follower.js';
import { DeviceTable } from '../../src/authz/state.js';
import { silentLogger } from '../../src/logging/logger.js';
import type { AccessLevelEvent, DeviceSummary } from '../../src/protocol/admin.js';
import { waitFor } from '../helpers.js';
import { createTestPki, type TestPki } from '../helpers/pki.js';

/*
 * The follower against a scripted control plane: what it does with ids that skip, with events stored before
 * they carried the certificate, and with a device list it cannot parse.
 */

let pki: TestPki;
let server: Server;
let url = '';
let stream: ServerResponse | null = null;
let listReads = 0;
let devices: DeviceSummary[] = [];
let listBody: ((url: string) => string) | null = null;

const cert = (fp: string) => ({ serial: '01', subject: 'CN=device-x', issuer: 'CN=ca', not_after: '2099-01-01T00:00:00.000Z', fingerprint_sha256: fp });
const summary = (id: string, fp: string): DeviceSummary => ({
  id, state: 'active', accessLevel: 'full', compliant: true, hostname: 'h', platform: 'linux', enrolledAt: '2026-01-01T00:00:00.000Z',
  lastSeen: '2026-01-01T00:00:00.000Z', lastSeq: 1, droppedReports: 0, seqAnomalies: 0, revokedReason: null, cert: cert(fp),
  os: { platform: 'linux', id: 'debian', name: 'Debian GNU/Linux 12', version: '12' }, managed: false,
});
const event = (id: string, current: 'full' | 'blocked', fp: string | undefined): AccessLevelEvent => ({
  device: id, previous: null, current, compliant: current === 'full', state: 'active', cause: 'report', at: new Date().toISOString(),
  ...(fp === undefined ? {} : { cert: cert(fp), os: null, managed: false }),
});
const send = (id: number, e: AccessLevelEvent): void => {
  stream?.write(`id: ${id}\nevent: access-level\ndata: ${JSON.stringify(e)}\n\n`);
};

beforeAll(async () => {
  pki = await createTestPki();
  server = createServer({ key: pki.server.keyPem, cert: pki.server.certPem }, (req, res) => {
    if (req.url === '/v1/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('retry: 2000\n\n');
      stream = res;
      return;
    }
    listReads++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(listBody ? listBody(req.url ?? '') : JSON.stringify({ devices }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://localhost:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('Follower', () => {
  it('applies events in order, and reads every device again when ids skip or an event lacks the certificate', async () => {
    devices = [summary('dev-a', 'aa')];
    const table = new DeviceTable();
    const f = new Follower({ controlPlaneUrl: url, caRootPem: pki.rootPem, token: 'vgt_x', logger: silentLogger(), table, idleMs: 10_000 });
    f.start();
    try {
      await waitFor(() => (f.status.synced ? true : undefined), 5000, 'the first sync');
      expect(listReads).toBe(1);
      expect(table.get('dev-a')?.fingerprint).toBe('aa');
      send(1, event('dev-a', 'blocked', 'aa'));
      await waitFor(() => (table.get('dev-a')?.level === 'blocked' ? true : undefined), 2000, 'event 1');
      send(2, event('dev-b', 'full', 'bb'));
      await waitFor(() => (table.get('dev-b') ? true : undefined), 2000, 'event 2');
      expect(listReads).toBe(1);

      // Event 3 never arrives: the list is read again and replaces the table.
      devices = [summary('dev-a', 'a2'), summary('dev-c', 'cc')];
      send(4, event('dev-a', 'full', 'a2'));
      await waitFor(() => (listReads === 2 && f.status.synced ? true : undefined), 2000, 'a resync after the gap');
      expect([table.get('dev-a')?.fingerprint, table.get('dev-b'), table.get('dev-c')?.fingerprint]).toEqual(['a2', undefined, 'cc']);
      expect(f.status.lastEventId).toBe(4);

      // An event stored before events carried certificates cannot be applied: read the list.
      send(5, event('dev-c', 'blocked', undefined));
      await waitFor(() => (listReads === 3 && f.status.synced ? true : undefined), 2000, 'a resync after an old event');
      expect(f.status.resyncs).toBe(3);
    } finally {
      f.stop();
    }
  });

  it('gives up on a control plane that accepts the connection but never answers, and keeps trying', async () => {
    const sockets: Socket[] = [];
    const mute = createTcpServer((sock) => sockets.push(sock));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const f = new Follower({
      controlPlaneUrl: `https://localhost:${(mute.address() as AddressInfo).port}`,
      caRootPem: pki.rootPem,
      token: 'vgt_x',
      logger: silentLogger(),
      table: new DeviceTable(),
      idleMs: 300,
      minRetryMs: 50,
      maxRetryMs: 50,
    });
    f.start();
    try {
      await waitFor(() => (sockets.length >= 2 ? true : undefined), 5000, 'a second attempt');
      expect(f.status.lastError).toBe('the event stream was silent for 0.3 s');
      expect(f.status.everSynced).toBe(false);
    } finally {
      f.stop();
      for (const s of sockets) s.destroy();
      await new Promise((r) => mute.close(r));
    }
  });

  it('reads the device list page by page, following next until it is null', async () => {
    const urls: string[] = [];
    const all = Array.from({ length: 1500 }, (_, i) => summary(`dev-p${String(i).padStart(4, '0')}`, `f${i}`));
    listBody = (u) => {
      urls.push(u);
      const cursor = new URL(u, 'https://x').searchParams.get('cursor');
      return JSON.stringify(cursor === null ? { devices: all.slice(0, 1000), next: 'cGFnZTI' } : { devices: all.slice(1000), next: null });
    };
    const table = new DeviceTable();
    const f = new Follower({ controlPlaneUrl: url, caRootPem: pki.rootPem, token: 'vgt_x', logger: silentLogger(), table, idleMs: 10_000 });
    f.start();
    try {
      await waitFor(() => (f.status.synced ? true : undefined), 5000, 'the sync');
      expect(urls).toEqual(['/v1/admin/devices?limit=1000', '/v1/admin/devices?limit=1000&cursor=cGFnZTI']);
      expect(table.size).toBe(1500);
      expect(table.get('dev-p1499')?.fingerprint).toBe('f1499');
    } finally {
      f.stop();
      listBody = null;
    }
  });

  it('treats a device list it cannot parse as an outage, with one line naming the field', async () => {
    listBody = () => JSON.stringify({ devices: [{ ...summary('dev-a', 'aa'), accessLevel: 'everything' }] });
    const table = new DeviceTable();
    const f = new Follower({ controlPlaneUrl: url, caRootPem: pki.rootPem, token: 'vgt_x', logger: silentLogger(), table, idleMs: 10_000, minRetryMs: 50, maxRetryMs: 100 });
    f.start();
    try {
      await waitFor(() => (f.status.lastError !== null ? true : undefined), 5000, 'the error');
      expect(f.status.lastError).toMatch(/^GET \/v1\/admin\/devices: devices\.0\.accessLevel: Invalid option: expected one of "full"\|"limited"\|"blocked"$/);
      expect(f.status.everSynced).toBe(false);
      expect(table.size).toBe(0);
    } finally {
      f.stop();
      listBody = null;
    }
  });
});
