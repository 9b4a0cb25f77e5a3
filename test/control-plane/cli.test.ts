import { execFile, spawn } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { deviceListSchema, secretCreateResponseSchema } from '../../src/protocol/admin.js';
import { enrollResponseSchema } from '../../src/protocol/wire.js';
import { prepare } from '../helpers/control-plane.js';
import { call } from '../helpers/https.js';
import { sampleReport } from '../helpers/report.js';
import { freePort } from '../helpers.js';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../src/control-plane/cli.ts');
const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeout: 30_000 });


describe('vigil-control-plane CLI (real processes)', () => {
  it('creates a secret, serves from a config file with a flag override, lists devices, stops on SIGTERM', async () => {
    const p = await prepare();
    const created = secretCreateResponseSchema.parse(JSON.parse((await cli('secret', 'create', '--data-dir', p.config.dataDir, '--uses', '2', '--expires', '1h', '--json')).stdout));
    expect(created.usesTotal).toBe(2);
    const plain = await cli('secret', 'create', '--data-dir', p.config.dataDir);
    expect(plain.stdout.trim()).toMatch(/^vges_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(plain.stderr).toMatch(/not shown again/);

    const port = await freePort();
    const cfg = join(p.dir, 'cp.json');
    await writeFile(cfg, JSON.stringify({ ...p.config, listen: '127.0.0.1:1' }));
    const server = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--config', cfg, '--listen', `127.0.0.1:${port}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    server.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => {
      server.on('exit', (code) => {
        resolve(code);
      });
    });
    try {
      const url = `https://127.0.0.1:${port}`;
      await expect
        .poll(async () => (await call(p.pki.rootPem, `${url}/health`).catch(() => ({ status: 0 }))).status, { timeout: 20_000, interval: 200 })
        .toBe(200);
      const r = await call(p.pki.rootPem, `${url}/v1/enroll`, {
        body: { protocolVersion: 1, enrollmentSecret: created.secret, deviceId: 'dev-cli-1', facts: sampleReport().device },
      });
      expect(enrollResponseSchema.parse(r.json).subject).toBe('device-dev-cli-1');
      // Enrolled once the device shows its certificate.
      expect((await call(p.pki.rootPem, `${url}/v1/enroll/confirm`, { method: 'POST', tls: await p.pki.device('dev-cli-1') })).status).toBe(200);

      const list = deviceListSchema.parse(JSON.parse((await cli('devices', '--config', cfg, '--json')).stdout));
      expect(list.devices.map((d) => d.id)).toEqual(['dev-cli-1']);
      const table = (await cli('devices', '--data-dir', p.config.dataDir)).stdout;
      expect(table).toMatch(/^DEVICE\s+HOSTNAME\s+STATE\s+ACCESS\s+LAST SEEN\ndev-cli-1\s+ws-0142\s+enrolled\s+blocked\s+-$/m);
    } finally {
      server.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/control plane listening/);
    // A clean close: the last connection checkpointed the WAL into the database and removed it.
    await expect(stat(join(p.config.dataDir, 'control-plane.sqlite-wal'))).rejects.toThrow('ENOENT');
  }, 60_000);

  it('explains a bad configuration and exits 1', async () => {
    const err = await cli('serve', '--data-dir', '/tmp/x', '--ca-url', 'not a url').then(
      () => null,
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(err?.code).toBe(1);
    expect(err?.stderr).toMatch(/invalid configuration: caUrl: .*caRoot/);
  });
});
