import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { identityConfigSchema, normalizeFingerprint } from '../../src/config/sections/identity.js';
import { parseSubjectAltName } from '../../src/identity/certs.js';
import { base32, deriveDeviceId, isPlausibleHardwareValue, pickDeviceId } from '../../src/identity/device-id.js';
import { IdentityError } from '../../src/identity/errors.js';
import { FileKeyStorage, openWithDataKey, sealWithDataKey } from '../../src/identity/key-storage.js';
import { deviceKeyFromPkcs8, generateDeviceKey } from '../../src/identity/keys.js';
import { backoffDelay, renewalTime } from '../../src/identity/schedule.js';
import { expand, renderSubject } from '../../src/identity/template.js';
import { diagnoseSignRejection, precheckToken, type OttClaims } from '../../src/identity/token.js';

describe('device ID', () => {
  it('base32 matches the RFC 4648 test vectors (lower case, unpadded)', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'my'],
      ['fo', 'mzxq'],
      ['foo', 'mzxw6'],
      ['foob', 'mzxw6yq'],
      ['fooba', 'mzxw6ytb'],
      ['foobar', 'mzxw6ytboi'],
    ];
    for (const [input, out] of vectors) expect(base32(Buffer.from(input))).toBe(out);
  });

  it('is stable, case-insensitive in its input, 26 DNS-safe chars, and never contains the raw value', () => {
    const a = deriveDeviceId({ source: 'hardware-uuid', value: '4C4C4544-0042-3510-8051-B4C04F4E4B32' });
    const b = deriveDeviceId({ source: 'hardware-uuid', value: ' 4c4c4544-0042-3510-8051-b4c04f4e4b32\n' });
    expect(a).toEqual(b);
    expect(a.id).toMatch(/^[a-z2-7]{26}$/);
    expect(a.id).not.toContain('4c4c');
    expect(deriveDeviceId({ source: 'machine-id', value: '4C4C4544-0042-3510-8051-B4C04F4E4B32' }).id).not.toBe(a.id);
  });

  it('skips firmware placeholders and prefers hardware over machine-id', () => {
    for (const v of ['', 'None', 'To be filled by O.E.M.', '00000000-0000-0000-0000-000000000000', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', '03000200-0400-0500-0006-000700080009']) {
      expect(isPlausibleHardwareValue(v), v).toBe(false);
    }
    const picked = pickDeviceId([
      { source: 'machine-id', value: '3d1219c7c4c5404aaa1f6d2a48adfda4' },
      { source: 'hardware-uuid', value: '00000000-0000-0000-0000-000000000000' },
      { source: 'hardware-serial', value: 'PF2ABCDE' },
    ]);
    expect(picked?.source).toBe('hardware-serial');
    expect(pickDeviceId([])).toBeUndefined();
  });
});

describe('subject template', () => {
  const t = identityConfigSchema.parse({}).subject;
  it('renders the default CN, DNS SAN and URI SAN', () => {
    expect(renderSubject(t, { id: 'abc', domain: 'corp.example' })).toEqual({
      commonName: 'device-abc',
      dnsNames: ['abc.devices.corp.example'],
      uris: ['urn:vigil:device:abc'],
    });
  });
  it('drops a SAN that needs a variable with no value', () => {
    expect(renderSubject(t, { id: 'abc', domain: undefined }).dnsNames).toEqual([]);
    expect(expand('{id}.{nope}', { id: 'x', domain: 'y' })).toBeUndefined();
  });
});

describe('config', () => {
  it('defaults every key and normalises a pasted fingerprint', () => {
    const c = identityConfigSchema.parse({ fingerprint: 'AB:'.repeat(31) + 'AB' });
    expect(normalizeFingerprint(c.fingerprint ?? '')).toBe('ab'.repeat(32));
    expect(() => identityConfigSchema.parse({ fingerprint: 'abc' })).toThrow();
    expect(c.keyType).toBe('ec-p256');
    expect(c.keyStorage).toBe('keychain');
    expect(c.renewFraction).toBeCloseTo(1 / 3);
    expect(() => identityConfigSchema.parse({ caUrl: 'http://ca.example' })).toThrow();
    expect(() => identityConfigSchema.parse({ keyStorage: 'plaintext' })).toThrow();
  });
});

describe('scheduling', () => {
  const nb = new Date('2026-01-01T00:00:00Z');
  const na = new Date('2026-01-01T03:00:00Z');
  it('renews when a third of the lifetime is left, jitter only ever later', () => {
    expect(renewalTime(nb, na, 1 / 3, 0.1, 0).toISOString()).toBe('2026-01-01T02:00:00.000Z');
    expect(renewalTime(nb, na, 1 / 3, 0.1, 1).toISOString()).toBe('2026-01-01T02:06:00.000Z');
  });
  it('backs off exponentially, capped, never below half the step', () => {
    expect(backoffDelay(1, 30_000, 1_800_000, 0)).toBe(15_000);
    expect(backoffDelay(1, 30_000, 1_800_000, 1)).toBe(30_000);
    expect(backoffDelay(4, 30_000, 1_800_000, 1)).toBe(240_000);
    expect(backoffDelay(40, 30_000, 1_800_000, 1)).toBe(1_800_000);
    expect(backoffDelay(40, 30_000, 1_800_000, 0)).toBe(900_000);
  });
});

describe('SAN parsing of Node X509Certificate.subjectAltName', () => {
  it('reads plain and JSON-quoted values', () => {
    expect(parseSubjectAltName('DNS:a.example.com, URI:urn:vigil:device:x, IP Address:127.0.0.1, email:a@b.c')).toEqual({
      dnsNames: ['a.example.com'],
      uris: ['urn:vigil:device:x'],
      ips: ['127.0.0.1'],
      emails: ['a@b.c'],
    });
    expect(parseSubjectAltName('DNS:"evil.example, DNS:good.example", DNS:b.example').dnsNames).toEqual([
      'evil.example, DNS:good.example',
      'b.example',
    ]);
    expect(parseSubjectAltName(undefined).dnsNames).toEqual([]);
  });
});

describe('key sealing', () => {
  it('round-trips, and refuses tampering, truncation and the wrong data key', async () => {
    const key = await generateDeviceKey('ec-p256');
    const dataKey = randomBytes(32);
    const blob = sealWithDataKey(dataKey, key.pkcs8);
    expect(blob.includes(key.pkcs8)).toBe(false);
    expect(deviceKeyFromPkcs8(openWithDataKey(dataKey, blob, 'k')).spki.equals(key.spki)).toBe(true);
    const flipped = Buffer.from(blob);
    flipped[flipped.length - 1] = (flipped.at(-1) ?? 0) ^ 1;
    for (const bad of [flipped, blob.subarray(0, 40)]) expect(() => openWithDataKey(dataKey, bad, 'k')).toThrow(IdentityError);
    expect(() => openWithDataKey(randomBytes(32), blob, 'k')).toThrow(/fails authentication/);
  });

  it('file storage writes a PKCS#8 PEM that reads back', async () => {
    const key = await generateDeviceKey('ec-p256');
    const fs = new FileKeyStorage();
    const pem = await fs.seal(key.pkcs8);
    expect(pem.toString()).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect((await fs.open(pem, 'k')).equals(key.pkcs8)).toBe(true);
    await expect(fs.open(Buffer.from('garbage'), 'k')).rejects.toThrow(/not a PKCS#8 PEM/);
  });
});

describe('diagnosing step-ca 401s from the token itself', () => {
  const generic = JSON.stringify({ status: 401, message: 'The request lacked necessary authorization to be completed. Please see the certificate authority logs for more info.' });
  const now = new Date('2026-01-01T00:00:00Z');
  const t = now.getTime() / 1000;
  const claims = (c: Partial<OttClaims> = {}): OttClaims => ({
    kid: 'kid1',
    iss: 'admin',
    sub: 'device-x',
    aud: ['https://ca.example:9000/1.0/sign'],
    exp: t + 300,
    nbf: t - 10,
    sha: undefined,
    sans: [],
    ...c,
  });
  const diagnose = (c: OttClaims, status = 401) =>
    diagnoseSignRejection({ status, body: generic, claims: c, caUrl: 'https://ca.example:9000', caNow: now, provisioners: [{ name: 'admin', kid: 'kid1' }] });

  it('names each cause, and falls back to "already used"', () => {
    expect(diagnose(claims({ aud: ['https://other/1.0/sign'] })).code).toBe('token-audience');
    expect(diagnose(claims({ exp: t - 61 })).code).toBe('token-expired');
    // Within step-ca's 60 s leeway the CA accepted the expiry, so it is not the cause.
    expect(diagnose(claims({ exp: t - 30 })).code).toBe('token-used');
    expect(diagnose(claims({ nbf: t + 120 })).code).toBe('token-not-yet-valid');
    expect(diagnose(claims({ kid: 'other' })).code).toBe('token-provisioner');
    expect(diagnose(claims()).message).toBe('the token was already used or is invalid; ask for a new one');
    expect(diagnose(claims(), 400).message).toMatch(/HTTP 400: The request lacked/);
  });

  it('rejects a token for another root before sending it', () => {
    expect(() => {
      precheckToken(claims({ sha: 'aa'.repeat(32) }), 'bb'.repeat(32));
    }).toThrow(/pinned root is bbbb/);
  });
});
