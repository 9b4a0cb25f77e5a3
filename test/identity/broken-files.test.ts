import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityConfigSchema } from '../../src/config/sections/identity.js';
import { IdentityManager } from '../../src/identity/manager.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { CLI, isolatedEnv, runCliProcess, startCliProcess, tempDir } from '../helpers.js';
import { keyringHome } from '../helpers/keyring.js';

/*
 * Each identity file damaged in its own way, seen through the built CLI against a real step-ca: `identity`
 * and `status` name the file and what is wrong, and `enroll` with the usual flags and a fresh token repairs it.
 */

const execFileP = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));

interface Shown {
  state: string;
  reason?: string;
  fix?: string;
}

let ca: StepCa;

beforeAll(async () => {
  ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
}, 120_000);

afterAll(async () => {
  await ca.close();
});

async function tokenFor(stateDir: string): Promise<string> {
  const m = new IdentityManager({ stateDir, config: identityConfigSchema.parse({ domain: 'example.com' }) });
  const { request, tokenSans } = await m.requestedSubject();
  return ca.token({ subject: request.commonName, sans: tokenSans });
}

async function only(dir: string, pattern: RegExp): Promise<string> {
  const names = (await readdir(dir)).filter((n) => pattern.test(n));
  expect(names).toHaveLength(1);
  return join(dir, names[0] ?? '');
}

describe.skipIf(!existsSync(CLI))('broken identity files (file key storage, built CLI)', () => {
  const env = isolatedEnv(tempDir(), { VIGIL_IDENTITY_KEY_STORAGE: 'file', VIGIL_IDENTITY_DOMAIN: 'example.com', VIGIL_IDENTITY_RENEW_JITTER: '0' });

  async function enrolled(): Promise<{ stateDir: string; vigil: (...args: string[]) => ReturnType<typeof runCliProcess> }> {
    const stateDir = tempDir();
    const vigil = (...args: string[]) => runCliProcess(['--state-dir', stateDir, ...args], env);
    const res = await vigil('enroll', '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint, '--token', await tokenFor(stateDir));
    expect(res.code, res.stderr).toBe(0);
    return { stateDir, vigil };
  }

  const cases: { name: string; damage: (identityDir: string) => Promise<string>; says: RegExp }[] = [
    {
      name: 'corrupt pinned root PEM',
      damage: async (d) => {
        const f = await only(d, /^root-.*\.crt$/);
        await writeFile(f, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
        return f;
      },
      says: /^the pinned root \S+ is not a readable PEM certificate; /,
    },
    {
      name: 'corrupt trust.json',
      damage: async (d) => {
        const f = join(d, 'trust.json');
        await writeFile(f, '{"version": 1, "caUrl": ');
        return f;
      },
      says: /^the CA trust file \S+ is corrupt \(not JSON\); /,
    },
    {
      name: 'garbled key file',
      damage: async (d) => {
        const f = await only(d, /\.key\.pem$/);
        await writeFile(f, (await readFile(f, 'utf8')).replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!garbled!!!!!!!!!'));
        return f;
      },
      says: /^the key file \S+ (is truncated or not a PKCS#8 PEM|does not hold a usable private key); /,
    },
    {
      name: 'missing key file',
      damage: async (d) => {
        const f = await only(d, /\.key\.pem$/);
        await rm(f);
        return f;
      },
      says: /^the key file \S+ is missing; /,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: identity and status say which file and what is wrong; enroll repairs it`, async () => {
      const { stateDir, vigil } = await enrolled();
      const file = await c.damage(join(stateDir, 'identity'));

      const shown = JSON.parse((await vigil('identity', '--json')).stdout) as Shown;
      expect(shown.state).toBe('needs-enrollment');
      expect(shown.reason).toMatch(c.says);
      expect(shown.reason).toContain(file);
      expect(shown.reason).toMatch(/; run `vigil enroll --ca-url <url> --fingerprint <sha256> --token <token>` to replace it$/);
      expect(shown.fix).toBe(`vigil enroll --ca-url ${ca.url} --fingerprint ${ca.rootFingerprint} --token <token>`);
      const status = JSON.parse((await vigil('status', '--json')).stdout) as { identity: Shown };
      expect(status.identity).toEqual(shown.fix === undefined ? { state: shown.state, reason: shown.reason } : { state: shown.state, reason: shown.reason, fix: shown.fix });

      // A bad fingerprint is refused before anything is written: the damage is still there, untouched.
      const before = await readFile(file).catch(() => undefined);
      const wrong = await vigil('enroll', '--ca-url', ca.url, '--fingerprint', '00'.repeat(32), '--token', await tokenFor(stateDir));
      expect(wrong.code).toBe(1);
      expect(await readFile(file).catch(() => undefined)).toEqual(before);

      const repaired = await vigil('enroll', '--ca-url', ca.url, '--fingerprint', ca.rootFingerprint, '--token', await tokenFor(stateDir));
      expect(repaired.code, repaired.stderr).toBe(0);
      expect(JSON.parse((await vigil('identity', '--json')).stdout)).toMatchObject({ state: 'valid' });
      const renewed = await vigil('renew', '--force');
      expect(renewed.code, renewed.stderr).toBe(0);
    }, 60_000);
  }

  it('a daemon with a broken key reports needs-enrollment once and never asks the CA', async () => {
    const { stateDir } = await enrolled();
    await cases[2]?.damage(join(stateDir, 'identity'));
    const renewCalls = (): number => ca.logs().split('\n').filter((l) => l.includes('/1.0/renew')).length;
    const calls = renewCalls();
    const daemon = startCliProcess(['--state-dir', stateDir, 'daemon'], { ...env, VIGIL_IDENTITY_RENEW_FRACTION: '0.999', VIGIL_IDENTITY_RETRY_INITIAL_SECONDS: '1' });
    try {
      await new Promise((r) => setTimeout(r, 5000));
      expect(daemon.output().match(/device certificate needs enrollment: the key file/g)).toHaveLength(1);
      expect(renewCalls()).toBe(calls);
    } finally {
      const exited = new Promise((r) => daemon.child.once('exit', r));
      daemon.child.kill('SIGTERM');
      await exited;
    }
  }, 30_000);
});

describe.skipIf(!existsSync(CLI))('broken keychain-sealed key (gnome-keyring Secret Service, built CLI)', () => {
  it('a garbled sealed key file and a deleted keychain entry are reported, the daemon stops, and enroll repairs both', async () => {
    const home = await keyringHome();
    try {
      const stateDir = tempDir();
      const tokens = await Promise.all([1, 2, 3, 4].map(() => tokenFor(stateDir)));
      const child = join(here, 'broken-keychain-child.ts');
      const node = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(child)}`;
      const { stdout } = await execFileP('dbus-run-session', ['--', 'sh', '-c', `gnome-keyring-daemon --start --components=secrets >/dev/null; exec ${node}`], {
        cwd: join(here, '..', '..'),
        env: {
          ...isolatedEnv(home, { VIGIL_IDENTITY_KEY_STORAGE: 'keychain', VIGIL_IDENTITY_DOMAIN: 'example.com', VIGIL_IDENTITY_RENEW_JITTER: '0' }),
          XDG_RUNTIME_DIR: home,
          VIGIL_TEST_STATE_DIR: stateDir,
          VIGIL_TEST_CA_URL: ca.url,
          VIGIL_TEST_FINGERPRINT: ca.rootFingerprint,
          VIGIL_TEST_TOKENS: tokens.join(' '),
        },
        timeout: 90_000,
      });
      const out = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, Shown | number | string>;
      expect(out.enrolled).toMatchObject({ state: 'valid', keyStorage: 'keychain' });
      expect(out.garbled).toMatchObject({ state: 'needs-enrollment', reason: expect.stringMatching(/^the encrypted key file \S+\.key\.enc fails authentication/) as string });
      expect(out.garbledStatus).toMatchObject({ state: 'needs-enrollment' });
      expect(out.repairedGarbled).toMatchObject({ state: 'valid' });
      expect(out.entryDeleted).toMatchObject({ state: 'needs-enrollment', reason: expect.stringMatching(/^the keychain entry "Vigil\/device-key-data-key" that unlocks \S+ is missing; run `vigil enroll/) as string });
      expect(out.daemonNeedsEnrollmentLines).toBe(1);
      expect(out.repairedEntry).toMatchObject({ state: 'valid' });
      expect(out.renewAfterRepair).toBe(0);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  }, 120_000);
});
