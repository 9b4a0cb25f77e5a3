import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityConfigSchema } from '../../src/config/sections/identity.js';
import { IdentityManager } from '../../src/identity/manager.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { CLI, isolatedEnv, runCliProcess, startCliProcess, tempDir, waitFor } from '../helpers.js';

// The built CLI (npm test builds first) against a real step-ca. File key storage: this process has no
// Secret Service; keychain.test.ts covers the keychain through the same manager.
describe('vigil enroll / identity / renew / rekey / unenroll / daemon', () => {
  let ca: StepCa;
  let env: NodeJS.ProcessEnv;
  let stateDir: string;

  beforeAll(async () => {
    expect(existsSync(CLI), 'run `npm run build` first').toBe(true);
    ca = await startStepCa({ claims: { defaultTLSCertDuration: '60s' } });
    const home = tempDir();
    stateDir = tempDir();
    env = isolatedEnv(home, { VIGIL_IDENTITY_KEY_STORAGE: 'file', VIGIL_IDENTITY_DOMAIN: 'example.com', VIGIL_IDENTITY_RENEW_JITTER: '0' });
  });

  afterAll(async () => {
    await ca.close();
  });

  const vigil = (...args: string[]) => runCliProcess(['--state-dir', stateDir, ...args], env);

  async function token(): Promise<string> {
    const m = new IdentityManager({ stateDir, config: identityConfigSchema.parse({ domain: 'example.com' }) });
    const { request, tokenSans } = await m.requestedSubject();
    return ca.token({ subject: request.commonName, sans: tokenSans });
  }

  it('walks the whole lifecycle with one-line errors and exit codes', async () => {
    const before = await vigil('identity', '--json');
    expect(before.code).toBe(0);
    expect(JSON.parse(before.stdout)).toMatchObject({ state: 'not-enrolled', keyStorage: 'file' });

    const noToken = await vigil('enroll', '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/^vigil: enroll needs --token; an admin can make one with: step ca token device-[a-z2-7]{26} --san [a-z2-7]{26}\.devices\.example\.com --san urn:vigil:device:[a-z2-7]{26} --ca-url https:\/\/127\.0\.0\.1:\d+\n$/);

    const wrong = await vigil('enroll', '--ca-url', ca.url, '--fingerprint', '00'.repeat(32), '--token', await token());
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim().split('\n').filter((l) => l.startsWith('vigil: '))).toHaveLength(1);
    expect(wrong.stderr).toContain(ca.rootFingerprint);

    const t = await token();
    const ok = await vigil('enroll', '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint, '--token', t);
    // As root (the service) the file is where a Linux service keeps its key: described, not warned about.
    const asService = process.platform === 'linux' && process.getuid?.() === 0;
    if (asService) expect(ok.stderr).not.toMatch(/unencrypted in a 0600 file/);
    else expect(ok.stderr).toMatch(/unencrypted in a 0600 file/);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^Enrolled\.\nState: +valid\n/);

    const replay = await vigil('enroll', '--token', t);
    expect(replay.code).toBe(1);
    expect(replay.stderr).toContain('vigil: the token was already used or is invalid; ask for a new one\n');

    const shown = JSON.parse((await vigil('identity', '--json')).stdout) as { state: string; serial: string; rootFingerprint: string };
    expect(shown.state).toBe('valid');
    expect(shown.rootFingerprint).toBe(ca.rootFingerprint);
    const human = await vigil('identity');
    expect(human.stdout).toMatch(/Pinned root: +[0-9a-f]{64}\n/);
    if (asService) expect(human.stdout).toMatch(/\nKey storage: +the device private key is in a root-only file \(0600, in a 0700 directory\)/);
    // Stable paths for other tools, naming the pair the identity uses.
    const paths = { certificate: join(stateDir, 'identity', 'device.crt'), key: join(stateDir, 'identity', 'device.key') };
    expect((JSON.parse((await vigil('identity', '--json')).stdout) as { paths: unknown }).paths).toEqual(paths);
    expect(human.stdout).toContain(`\nCert file:    ${paths.certificate}\nKey file:     ${paths.key}\n`);
    expect(new X509Certificate(readFileSync(paths.certificate)).serialNumber).toBe(shown.serial);
    expect(createPublicKey(readFileSync(paths.key)).export({ format: 'jwk' })).toEqual(new X509Certificate(readFileSync(paths.certificate)).publicKey.export({ format: 'jwk' }));

    const notDue = await vigil('renew');
    expect(notDue.stdout).toMatch(/^Not due until /);
    const renewed = await vigil('renew', '--force');
    expect(renewed.code).toBe(0);
    expect(renewed.stdout).toMatch(/^Renewed; valid until /);

    const rekeyed = await vigil('rekey');
    expect(rekeyed.code).toBe(0);

    // The daemon renews on its own; with renewFraction 0.95 a 60 s certificate is due 3 s after issue.
    const afterRekey = JSON.parse((await vigil('identity', '--json')).stdout) as { serial: string };
    const daemon = startCliProcess(['--state-dir', stateDir, 'daemon'], { ...env, VIGIL_IDENTITY_RENEW_FRACTION: '0.95' });
    try {
      await waitFor(
        async () => {
          const s = JSON.parse((await vigil('identity', '--json')).stdout) as { serial: string };
          return s.serial !== afterRekey.serial ? s : undefined;
        },
        20_000,
        'the daemon to renew',
      );
    } finally {
      const exited = new Promise((r) => daemon.child.once('exit', r));
      daemon.child.kill('SIGTERM');
      await exited;
    }

    const un = await vigil('unenroll');
    expect(un.code).toBe(0);
    expect(un.stdout).toBe('Certificate revoked; key and certificate deleted.\n');
    expect(JSON.parse((await vigil('identity', '--json')).stdout)).toMatchObject({ state: 'not-enrolled' });
  }, 90_000);
});
