import { describe, expect, it } from 'vitest';
import { deviceIdFromCertificate, parseSubjectAltName } from '../../src/control-plane/cert-identity.js';
import { parseListen } from '../../src/control-plane/config.js';
import { parseDurationSeconds } from '../../src/control-plane/duration.js';
import { RateLimiter } from '../../src/control-plane/rate-limit.js';
import { generateSecret, secretId, secretMatches, tokensEqual } from '../../src/control-plane/secrets.js';

describe('parseSubjectAltName', () => {
  it('splits Node’s subjectaltname string, decoding quoted values', () => {
    // Strings as Node 20.20.2 prints them; the quoted one was recorded on this machine from an openssl-made
    // certificate whose single URI SAN is "urn:vigil:device:abc, URI:urn:vigil:device:evil".
    expect(parseSubjectAltName('DNS:localhost, IP Address:127.0.0.1, URI:urn:vigil:device:abc')).toEqual([
      { type: 'DNS', value: 'localhost' },
      { type: 'IP Address', value: '127.0.0.1' },
      { type: 'URI', value: 'urn:vigil:device:abc' },
    ]);
    expect(parseSubjectAltName('URI:"urn:vigil:device:abc\\u002c URI:urn:vigil:device:evil", DNS:a.example')).toEqual([
      { type: 'URI', value: 'urn:vigil:device:abc, URI:urn:vigil:device:evil' },
      { type: 'DNS', value: 'a.example' },
    ]);
  });
});

describe('deviceIdFromCertificate', () => {
  it('prefers the URI SAN and falls back to the CN', () => {
    expect(deviceIdFromCertificate({ subjectaltname: 'URI:urn:vigil:device:dev-1', subject: { CN: 'device-dev-1' } })).toBe('dev-1');
    expect(deviceIdFromCertificate({ subject: { CN: 'device-dev-2' } })).toBe('dev-2');
  });
  it('names no device when the certificate is ambiguous or malformed', () => {
    expect(deviceIdFromCertificate({ subjectaltname: 'URI:urn:vigil:device:a1b, URI:urn:vigil:device:c2d' })).toBeNull();
    expect(deviceIdFromCertificate({ subjectaltname: 'URI:urn:vigil:device:a1b', subject: { CN: 'device-other' } })).toBeNull();
    expect(deviceIdFromCertificate({ subjectaltname: 'URI:"urn:vigil:device:abc\\u002c URI:urn:vigil:device:evil"' })).toBeNull();
    expect(deviceIdFromCertificate({ subject: { CN: 'localhost' } })).toBeNull();
    expect(deviceIdFromCertificate({ subject: { CN: 'device-../etc' } })).toBeNull();
  });
});

describe('secrets', () => {
  it('round-trips and compares in constant time', () => {
    const g = generateSecret();
    expect(secretId(g.secret)).toBe(g.id);
    expect(secretMatches(g.secret, g.hash)).toBe(true);
    expect(secretMatches(`${g.secret.slice(0, -1)}x`, g.hash)).toBe(false);
    expect(secretId('vges_short_x')).toBeNull();
    expect(tokensEqual('abc', 'abc')).toBe(true);
    expect(tokensEqual('abc', 'abcd')).toBe(false);
  });
});

describe('small parsers', () => {
  it('parses durations and listen addresses', () => {
    expect(parseDurationSeconds('7d')).toBe(604_800);
    expect(parseDurationSeconds('90')).toBe(90);
    expect(parseDurationSeconds('12h')).toBe(43_200);
    expect(parseDurationSeconds('soon')).toBeNull();
    expect(parseListen('127.0.0.1:8443')).toEqual({ host: '127.0.0.1', port: 8443 });
    expect(parseListen('[::1]:8443')).toEqual({ host: '::1', port: 8443 });
    expect(parseListen('127.0.0.1')).toBeNull();
  });
});

describe('RateLimiter', () => {
  it('allows a burst, then refills at the configured rate', () => {
    let t = 0;
    const rl = new RateLimiter(2, 6, 10, () => t);
    expect([rl.take('a'), rl.take('a')]).toEqual([0, 0]);
    expect(rl.take('a')).toBe(10);
    expect(rl.take('b')).toBe(0);
    t += 10_000;
    expect(rl.take('a')).toBe(0);
  });
});
