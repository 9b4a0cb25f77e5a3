import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdentityError } from '../../src/identity/errors.js';
import { IdentityManager } from '../../src/identity/manager.js';
import { StaticToken } from '../../src/identity/token.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { assertNoPlaintextKey, config, newStateDir } from './helpers.js';
import { keyringHome } from '../helpers/keyring.js';

const execFileP = promisify(execFile);
const here = fileURLToPath(new URL('.', import.meta.url));
const repo = join(here, '..', '..');

let ca: StepCa;
let home: string;

/** Runs the child script in its own D-Bus session with gnome-keyring's Secret Service started in it. */
async function runUnderSecretService(envExtra: Record<string, string>): Promise<Record<string, unknown>> {
  const child = join(here, 'keychain-child.ts');
  const node = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(child)}`;
  const script = `gnome-keyring-daemon --start --components=secrets >/dev/null; exec ${node}`;
  const { stdout } = await execFileP('dbus-run-session', ['--', 'sh', '-c', script], {
    cwd: repo,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, XDG_RUNTIME_DIR: home, ...envExtra },
    timeout: 60_000,
  });
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Record<string, unknown>;
}

beforeAll(async () => {
  ca = await startStepCa();
  home = await keyringHome();
});

afterAll(async () => {
  await ca.close();
  await rm(home, { recursive: true, force: true });
});

describe('key storage in a real OS keychain (keytar -> gnome-keyring Secret Service)', () => {
  it('seals the key under a keychain data key, renews from a new process, explains a lost entry, cleans up on unenroll', async () => {
    const stateDir = await newStateDir();
    // The device ID comes from this machine (the child derives the same one): the admin's token must match it.
    const probe = new IdentityManager({ stateDir: await newStateDir(), config: config() });
    const { request, tokenSans } = await probe.requestedSubject();
    const token = await ca.token({ subject: request.commonName, sans: tokenSans });
    const out = await runUnderSecretService({
      VIGIL_TEST_STATE_DIR: stateDir,
      VIGIL_TEST_CA_URL: ca.url,
      VIGIL_TEST_FINGERPRINT: ca.rootFingerprint,
      VIGIL_TEST_TOKEN: token,
    });
    expect((out.enrolled as { state: string; keyStorage: string }).state).toBe('valid');
    expect((out.enrolled as { keyStorage: string }).keyStorage).toBe('keychain');
    expect(out.dataKeyBytes).toBe(32);
    expect(out.renewed).toBe('renewed');
    expect((out.afterRenew as { serial: string }).serial).not.toBe((out.enrolled as { serial: string }).serial);
    expect(out.missingEntry).toEqual({
      code: 'corrupt-state',
      message: expect.stringMatching(/keychain entry "Vigil\/device-key-data-key" .* is missing; run `vigil enroll --ca-url <url> --fingerprint <sha256> --token <token>` to replace it/) as string,
    });
    expect(out.missingEntryState).toBe('needs-enrollment');
    expect(out.unenrolled).toEqual({ revoked: true });
    expect(out.dataKeyAfterUnenroll).toBeNull();
    // Scan after all of it with the real key's secret bytes (reported by the child before unenroll).
    await assertNoPlaintextKey(stateDir, [Buffer.from(String(out.secretHex), 'hex')]);
  }, 90_000);

  it('without any Secret Service, keychain mode fails with advice and writes no key', async () => {
    const stateDir = await newStateDir();
    const saved = { dbus: process.env.DBUS_SESSION_BUS_ADDRESS, display: process.env.DISPLAY };
    delete process.env.DBUS_SESSION_BUS_ADDRESS;
    delete process.env.DISPLAY;
    try {
      const m = new IdentityManager({ stateDir, config: config() });
      const { request, tokenSans } = await m.requestedSubject();
      const token = new StaticToken(await ca.token({ subject: request.commonName, sans: tokenSans }));
      const err = await m.enroll({ caUrl: ca.url, fingerprint: ca.rootFingerprint, token }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IdentityError);
      expect((err as IdentityError).code).toBe('keychain');
      expect((err as IdentityError).message).toMatch(/set identity.keyStorage to "file"/);
      expect((await m.status()).state).toBe('not-enrolled');
      await assertNoPlaintextKey(stateDir);
      // Found before the token went to the CA, so the same token still enrolls once storage works.
      expect(ca.logs()).not.toContain(await token.getToken());
    } finally {
      if (saved.dbus !== undefined) process.env.DBUS_SESSION_BUS_ADDRESS = saved.dbus;
      if (saved.display !== undefined) process.env.DISPLAY = saved.display;
    }
  });
});
