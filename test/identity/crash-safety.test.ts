import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StaticToken } from '../../src/identity/token.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { config, newStateDir } from './helpers.js';
import { IdentityManager } from '../../src/identity/manager.js';

const here = fileURLToPath(new URL('.', import.meta.url));

let ca: StepCa;

beforeAll(async () => {
  ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
});

afterAll(async () => {
  await ca.close();
});

/** The stable paths, read the way another tool would: the certificate's public key must be the key's. */
async function stablePairMatches(identityDir: string): Promise<boolean> {
  const cert = new X509Certificate(await readFile(join(identityDir, 'device.crt')));
  const key = createPrivateKey(await readFile(join(identityDir, 'device.key')));
  const fromKey = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return cert.publicKey.export({ type: 'spki', format: 'der' }).equals(fromKey);
}

describe('a SIGKILL at any moment of a key or certificate swap', () => {
  it('leaves a usable pair behind current.json and at the stable paths device.crt and device.key', async () => {
    const stateDir = await newStateDir();
    const cfg = config({ keyStorage: 'file' });
    const m = new IdentityManager({ stateDir, config: cfg });
    const { request, tokenSans } = await m.requestedSubject();
    await m.enroll({ caUrl: ca.url, fingerprint: ca.rootFingerprint, token: new StaticToken(await ca.token({ subject: request.commonName, sans: tokenSans })) });
    const identityDir = join(stateDir, 'identity');
    expect(await stablePairMatches(identityDir)).toBe(true);

    const swaps = { renewed: 0, rekeyed: 0 };
    const serials = new Set<string>();
    for (let round = 0; round < 12; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'crash-child.ts')], {
        cwd: join(here, '..', '..'),
        env: { ...process.env, VIGIL_TEST_STATE_DIR: stateDir, VIGIL_TEST_ROUND: String(round) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<void>((r) => child.once('exit', () => { r(); }));
      // Wait for the first swap (tsx start-up takes a while), then kill at a random point of a later one.
      const deadline = Date.now() + 20_000;
      while (!/renewed|rekeyed/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(out, err).toMatch(/renewed|rekeyed/);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 600)));
      child.kill('SIGKILL');
      await exited;
      for (const l of out.split('\n')) if (l === 'renewed' || l === 'rekeyed') swaps[l]++;

      // Before any Vigil code runs again (a status re-links): what another tool sees right after the crash.
      expect(await stablePairMatches(identityDir)).toBe(true);
      const status = await new IdentityManager({ stateDir, config: cfg }).status();
      expect(status, JSON.stringify(status)).toMatchObject({ state: 'valid' });
      serials.add(status.serial ?? '');
    }
    // Both kinds ran, several per child: kills landed in the middle of swaps, not only between runs.
    expect(swaps.renewed).toBeGreaterThan(6);
    expect(swaps.rekeyed).toBeGreaterThan(6);
    expect(serials.size).toBeGreaterThan(1);
  }, 180_000);
});
