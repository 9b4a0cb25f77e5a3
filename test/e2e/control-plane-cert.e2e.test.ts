import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { freePort } from '../helpers.js';

/*
 * `vigil-control-plane serve` without --tls-cert: the real CLI gets its server certificate from a real
 * step-ca with the provisioner key it holds, and renews it before expiry without a restart.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const CONTROL_PLANE = join(ROOT, 'dist/src/control-plane/cli.js');

/** The served certificate, verified against the step-ca root only (and the name 127.0.0.1). */
function servedCert(port: number, ca: string): Promise<{ serial: string; issuer: string; validTo: string }> {
  return new Promise((res, rej) => {
    const sock = connect({ host: '127.0.0.1', port, ca }, () => {
      const c = sock.getPeerCertificate();
      sock.destroy();
      res({ serial: c.serialNumber, issuer: [c.issuer.CN].flat().join(','), validTo: c.valid_to });
    });
    sock.on('error', rej);
  });
}

describe.skipIf(!existsSync(CONTROL_PLANE))('control plane server certificate from step-ca', () => {
  let ca: StepCa;
  let dir: string;
  let cp: ChildProcess | undefined;
  let log = '';

  beforeAll(async () => {
    // Short lifetimes so that renewal happens within the test.
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '12s' } });
    dir = await mkdtemp(join(tmpdir(), 'vigil-cp-cert-'));
  }, 120_000);

  afterAll(async () => {
    cp?.kill('SIGKILL');
    await ca.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves a step-ca certificate that agents verify with the pinned root, and renews it', async () => {
    await writeFile(join(dir, 'root.crt'), ca.rootPem);
    await writeFile(join(dir, 'provisioner.pem'), await ca.provisionerKeyPem(), { mode: 0o600 });
    await writeFile(join(dir, 'admin-token'), 'e2e-admin-token-0123456789abcdef', { mode: 0o600 });
    const port = await freePort();
    cp = spawn(
      process.execPath,
      [
        CONTROL_PLANE, 'serve', '--listen', `127.0.0.1:${port}`, '--data-dir', join(dir, 'data'), '--ca-url', ca.url,
        '--ca-root', join(dir, 'root.crt'), '--provisioner', ca.provisionerName, '--provisioner-key', join(dir, 'provisioner.pem'),
        '--admin-token-file', join(dir, 'admin-token'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cp.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    cp.stderr?.on('data', (d: Buffer) => (log += d.toString()));

    let first: Awaited<ReturnType<typeof servedCert>> | undefined;
    for (let i = 0; i < 100 && !first; i++) {
      first = await servedCert(port, ca.rootPem).catch(() => undefined);
      if (!first) await new Promise((r) => setTimeout(r, 200));
    }
    expect(first, log).toBeDefined();
    expect(first?.issuer).toBe('Vigil Test Intermediate CA');

    // Renewal at two thirds of the 12 s lifetime; the server swaps its context without restarting.
    let renewed: Awaited<ReturnType<typeof servedCert>> | undefined;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const now = await servedCert(port, ca.rootPem);
      if (now.serial !== first?.serial) {
        renewed = now;
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(renewed, log).toBeDefined();
    expect(log).toMatch(/server certificate reloaded/);
    expect(cp.exitCode).toBeNull();
  }, 60_000);
});
