import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PgStorage } from '../../src/control-plane/pg-storage.js';
import { sampleReport } from '../helpers/report.js';
import { startPostgres, type PgServer } from '../harness/postgres.js';
import { storageScaleContract } from './storage-scale-contract.js';
import { report, storageContract } from './storage-contract.js';

let server: PgServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server.cleanup();
});

storageContract({
  name: 'PostgreSQL',
  async fresh() {
    const url = await server.createDatabase();
    return { storage: await PgStorage.open(url), reopen: () => PgStorage.open(url) };
  },
});

storageScaleContract('PgStorage', async () => PgStorage.open(await server.createDatabase()));

describe('PgStorage', () => {
  it('migrates once when several instances start at once, and refuses a database from a newer control plane', async () => {
    const url = await server.createDatabase();
    const all = await Promise.all(Array.from({ length: 4 }, () => PgStorage.open(url)));
    await all[0]?.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
    expect((await all[3]?.getDevice('dev-s1'))?.id).toBe('dev-s1');
    for (const s of all) await s.close();
    const c = new pg.Client(url);
    await c.connect();
    await c.query("UPDATE meta SET value = '99' WHERE key = 'schema'");
    await c.end();
    await expect(PgStorage.open(url)).rejects.toThrow('database schema 99 is newer than this control plane understands (6)');
  });

  it('fails a report while the server is down, and recovers by itself once it is back', async () => {
    const url = await server.createDatabase();
    const idleErrors: Error[] = [];
    const s = await PgStorage.open(url, { onIdleError: (e) => idleErrors.push(e) });
    await s.enrollDevice({ id: 'dev-s1', facts: sampleReport().device, secretId: 'x', now: 1 });
    await s.ingestReport(report(1));
    await server.stop();
    await expect(s.ingestReport(report(2))).rejects.toThrow();
    await server.start();
    expect((await s.ingestReport(report(3))).inserted).toBe(true);
    expect((await s.listReports('dev-s1', { after: null, limit: 10 })).items.map((r) => r.seq)).toEqual([3, 1]);
    await s.close();
  });
});
