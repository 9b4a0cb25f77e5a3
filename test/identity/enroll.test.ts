import { X509Certificate } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaClient } from '../../src/identity/ca-client.js';
import { verifyIssued } from '../../src/identity/certs.js';
import { IdentityError } from '../../src/identity/errors.js';
import { createCsr, generateDeviceKey } from '../../src/identity/keys.js';
import type { IdentityManager } from '../../src/identity/manager.js';
import { StaticToken } from '../../src/identity/token.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { assertNoPlaintextKey, config, currentKeySecret, manager, memorySecretStore, newStateDir } from './helpers.js';

let ca: StepCa;

beforeAll(async () => {
  ca = await startStepCa();
});

afterAll(async () => {
  await ca.close();
});

/** What an admin runs: `step ca token <cn> --san ...` with exactly the subject the device asks for. */
async function tokenFor(m: IdentityManager, extra: Parameters<StepCa['token']>[0] extends infer T ? Partial<T> : never = {}): Promise<StaticToken> {
  const { request, tokenSans } = await m.requestedSubject();
  return new StaticToken(await ca.token({ subject: request.commonName, sans: tokenSans, ...extra }));
}

async function enrollFresh(overrides: Record<string, unknown> = {}) {
  const dir = await newStateDir();
  const secrets = memorySecretStore();
  const m = manager(dir, config(overrides), secrets);
  await m.enroll({ caUrl: ca.url, fingerprint: ca.rootFingerprint, token: await tokenFor(m) });
  return { dir, secrets, m };
}

async function scan(m: IdentityManager, dir: string): Promise<void> {
  const { secret } = await currentKeySecret(m);
  await assertNoPlaintextKey(dir, [secret]);
}

async function expectIdentityError(p: Promise<unknown>, code: string): Promise<IdentityError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(IdentityError);
  const ie = err as IdentityError;
  expect(ie.code, ie.message).toBe(code);
  expect(ie.message).not.toContain('\n');
  return ie;
}

describe('enrollment against a real step-ca', () => {
  it('enrolls: verified cert with the requested subject, key sealed under the keychain data key', async () => {
    const { dir, secrets, m } = await enrollFresh();
    const s = await m.status();
    const { request } = await m.requestedSubject();
    expect(s.state).toBe('valid');
    expect(s.keyStorage).toBe('keychain');
    expect(s.keyStorageWarning).toBeUndefined();
    expect(s.rootFingerprint).toBe(ca.rootFingerprint);
    expect(s.subject).toBe(`CN=${request.commonName}`);
    expect(request.commonName).toMatch(/^device-[a-z2-7]{26}$/);
    expect(s.dnsNames).toEqual([`${s.deviceId ?? ''}.devices.example.com`]);
    expect(s.uris).toEqual([`urn:vigil:device:${s.deviceId ?? ''}`]);
    expect(s.keyType).toBe('ec-p256');
    expect(Date.parse(s.renewAt ?? '')).toBeLessThan(Date.parse(s.notAfter ?? ''));
    // The stored chain verifies against the CA's root with an independent path (Node's X509Certificate).
    const pointer = await m.store.readPointer();
    const pems = (await readFile(join(m.store.dir, pointer?.certFile ?? ''), 'utf8')).split(/(?<=-----END CERTIFICATE-----\n)/);
    const [leaf, inter] = pems.map((p) => new X509Certificate(p));
    const root = new X509Certificate(ca.rootPem);
    expect(leaf?.verify(inter?.publicKey ?? root.publicKey)).toBe(true);
    expect(inter?.verify(root.publicKey)).toBe(true);
    expect([...secrets.entries.keys()]).toEqual(['Vigil/device-key-data-key']);
    expect(Buffer.from(secrets.entries.get('Vigil/device-key-data-key') ?? '', 'base64')).toHaveLength(32);
    expect(pointer?.keyFile).toMatch(/\.key\.enc$/);
    await scan(m, dir);
  });

  it('hands other clients (the control plane) TLS material pinned to the CA root', async () => {
    const { m } = await enrollFresh();
    const tls = await m.clientTls();
    expect(tls.ca).toBe(ca.rootPem);
    const client = new CaClient(ca.url, tls.ca, 5000);
    const res = await client.renew({ certChainPem: tls.cert, keyPem: tls.key });
    expect(new X509Certificate(res.crt).subject).toBe(`CN=${(await m.requestedSubject()).request.commonName}`);
  });

  it('enrolls an RSA-3072 key in explicit file mode, 0600, and says so in status', async () => {
    const { m } = await enrollFresh({ keyType: 'rsa-3072', keyStorage: 'file' });
    const s = await m.status();
    expect(s.state).toBe('valid');
    expect(s.keyType).toBe('rsa-3072');
    expect(s.keyStorage).toBe('file');
    expect(s.keyStorageWarning).toMatch(/unencrypted in a 0600 file/);
    const pointer = await m.store.readPointer();
    const st = await stat(m.store.path(pointer?.keyFile ?? ''));
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('refuses a wrong fingerprint, naming both, and saves nothing', async () => {
    const dir = await newStateDir();
    const m = manager(dir, config(), memorySecretStore());
    const wrong = 'ab'.repeat(32);
    const err = await expectIdentityError(m.enroll({ caUrl: ca.url, fingerprint: wrong, token: await tokenFor(m) }), 'fingerprint-mismatch');
    expect(err.message).toContain(wrong);
    expect(err.message).toContain(ca.rootFingerprint);
    expect(await readdir(dir)).toEqual([]);
  });

  it('explains a replayed token', async () => {
    const first = await enrollFresh();
    const token = await tokenFor(first.m);
    await first.m.enroll({ token });
    const other = manager(await newStateDir(), config(), memorySecretStore());
    const err = await expectIdentityError(other.enroll({ caUrl: ca.url, fingerprint: ca.rootFingerprint, token }), 'token-used');
    expect(err.message).toBe('the token was already used or is invalid; ask for a new one');
  });

  it('explains an expired token', async () => {
    const dir = await newStateDir();
    const m = manager(dir, config(), memorySecretStore());
    const token = await tokenFor(m, { issuedAt: -900, notBefore: -900, expiresIn: -300 });
    const err = await expectIdentityError(m.enroll({ caUrl: ca.url, fingerprint: ca.rootFingerprint, token }), 'token-expired');
    expect(err.message).toMatch(/^the token expired at .*; ask for a new one/);
  });

  it('explains a token for the wrong audience', async () => {
    const m = manager(await newStateDir(), config(), memorySecretStore());
    const token = await tokenFor(m, { audience: 'https://ca.other.example:9000/1.0/sign' });
    const err = await expectIdentityError(m.enroll({ caUrl: ca.url, fingerprint: ca.rootFingerprint, token }), 'token-audience');
    expect(err.message).toContain('https://ca.other.example:9000/1.0/sign');
    expect(err.message).toContain(`--ca-url ${ca.url}`);
  });

  it('explains a token from an unknown provisioner', async () => {
    const m = manager(await newStateDir(), config(), memorySecretStore());
    const token = await tokenFor(m, { foreignKey: true, issuer: 'someone-else' });
    const err = await expectIdentityError(m.enroll({ caUrl: ca.url, fingerprint: ca.rootFingerprint, token }), 'token-provisioner');
    expect(err.message).toContain('"someone-else"');
    expect(err.message).toContain(ca.provisionerName);
  });

  it('refuses, without spending it, a token minted for another root', async () => {
    const m = manager(await newStateDir(), config(), memorySecretStore());
    const token = await tokenFor(m, { sha: 'cd'.repeat(32) });
    await expectIdentityError(m.enroll({ caUrl: ca.url, fingerprint: ca.rootFingerprint, token }), 'token-root');
    // Refused locally: the CA never received it (its log records every token it is sent).
    expect(ca.logs()).not.toContain(await token.getToken());
  });

  it('rekeys over mTLS: new key, new serial, same names, old key file gone', async () => {
    const { dir, m } = await enrollFresh();
    const before = await m.status();
    const p1 = await m.store.readPointer();
    const after = await m.rekey();
    const p2 = await m.store.readPointer();
    expect(after.state).toBe('valid');
    expect(after.serial).not.toBe(before.serial);
    expect(after.dnsNames).toEqual(before.dnsNames);
    expect(p2?.keyFile).not.toBe(p1?.keyFile);
    expect(await readdir(m.store.dir)).not.toContain(p1?.keyFile);
    await scan(m, dir);
  });

  it('unenrolls: revokes at the CA (the old cert can no longer renew), deletes key, cert and keychain entry', async () => {
    const { dir, secrets, m } = await enrollFresh({ keyStorage: 'file' });
    const pointer = await m.store.readPointer();
    const keyPem = await readFile(m.store.path(pointer?.keyFile ?? ''), 'utf8');
    const certPem = await readFile(m.store.path(pointer?.certFile ?? ''), 'utf8');
    const res = await m.unenroll();
    expect(res.revoked).toBe(true);
    expect((await m.status()).state).toBe('not-enrolled');
    const left = await readdir(m.store.dir);
    expect(left.filter((n) => /^(key|cert)-|current\.json/.test(n))).toEqual([]);
    expect(secrets.entries.size).toBe(0);
    const client = new CaClient(ca.url, ca.rootPem, 5000);
    await expect(client.renew({ certChainPem: certPem, keyPem })).rejects.toThrow(/HTTP 401/);
    await assertNoPlaintextKey(dir);
  });

  it('truncated or garbage key and cert files give a clear error; re-enrollment recovers', async () => {
    for (const target of ['key', 'cert', 'pointer'] as const) {
      const { dir, m } = await enrollFresh();
      const pointer = await m.store.readPointer();
      if (!pointer) throw new Error('no pointer');
      const file = target === 'key' ? pointer.keyFile : target === 'cert' ? pointer.certFile : 'current.json';
      const path = m.store.path(file);
      const data = await readFile(path);
      await writeFile(path, target === 'cert' ? data.subarray(0, data.length / 2) : Buffer.from('garbage\n'));
      const err = await expectIdentityError(m.renew({ force: true }), 'corrupt-state');
      expect(err.message).toMatch(/; run `vigil enroll --ca-url <url> --fingerprint <sha256> --token <token>` to replace it$/);
      const s = await m.status();
      expect(s.state).toBe('needs-enrollment');
      expect(s.reason).toBeDefined();
      expect(m.nextRunAt()).toBeUndefined();
      expect((await m.renewIfDue()).action).toBe('skipped');
      // Re-enrollment needs only a token: the pinned root is kept.
      await m.enroll({ token: await tokenFor(m) });
      expect((await m.status()).state).toBe('valid');
      expect((await m.renew({ force: true })).action).toBe('renewed');
      await scan(m, dir);
    }
  });

  it('verification refuses a returned cert for another key, other names, or another root', async () => {
    const m = manager(await newStateDir(), config(), memorySecretStore());
    const { request, tokenSans } = await m.requestedSubject();
    const key = await generateDeviceKey('ec-p256');
    const res = await new CaClient(ca.url, ca.rootPem, 5000).sign(
      await createCsr(key, request),
      await ca.token({ subject: request.commonName, sans: tokenSans }),
    );
    if (!res.parsed) throw new Error(`sign failed: ${res.body}`);
    const { crt, certChain } = res.parsed;
    const expected = { spki: key.spki, ...request };
    expect(verifyIssued(crt, certChain, ca.rootPem, expected).intermediates).toHaveLength(1);
    const other = await generateDeviceKey('ec-p256');
    expect(() => verifyIssued(crt, certChain, ca.rootPem, { ...expected, spki: other.spki })).toThrow(/different public key/);
    expect(() => verifyIssued(crt, certChain, ca.rootPem, { ...expected, dnsNames: ['x.example.com'] })).toThrow(/SANs/);
    expect(() => verifyIssued(crt, certChain, ca.rootPem, { ...expected, commonName: 'device-other' })).toThrow(/CN/);
    expect(() => verifyIssued(crt, certChain, crt, expected)).toThrow(/does not chain to the pinned root/);
    expect(() => verifyIssued(crt, [], ca.rootPem, expected)).toThrow(/does not chain to the pinned root/);
  });

  it('leaves the committed pair in use when a crash interrupts a new write, and prunes the leftovers later', async () => {
    const { m, secrets } = await enrollFresh();
    const before = await m.status();
    // A crash after writing new files but before the pointer swap leaves only orphans.
    const orphan = await m.store.writeNew('cert', '.crt', 'half-written', 0o644);
    // A new process with the same keychain: it unseals the committed key, not the orphan.
    const fresh = manager(join(m.store.dir, '..'), config(), secrets);
    expect((await fresh.status()).serial).toBe(before.serial);
    const result = await m.renew({ force: true });
    expect(result.action).toBe('renewed');
    expect(await readdir(m.store.dir)).not.toContain(orphan);
  });
});
