import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging/logger.js';
import { redact } from '../../src/logging/redact.js';

const JWT = 'eyJhbGciOiJFUzI1NiIsImtpZCI6ImFiYyJ9.eyJzdWIiOiJkZXZpY2UtMTIzIiwic2hhIjoiYWJjIn0.c2lnbmF0dXJlc2lnbmF0dXJlc2ln';
const PEM = '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIGsecretsecretsecretsecretsecretsecretsecretsecretoAoGCCqGSM49\n-----END EC PRIVATE KEY-----';
const SECRETS = ['hunter2', 'enroll-s3cret-value', 'admin-t0ken-value', JWT, 'MHcCAQEEIGsecret', 'd-component-value', 'bearer-t0ken-abcdef'];

describe('log redaction', () => {
  it('redacts sensitive fields and secret-shaped strings by construction', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vigil-log-'));
    const logger = createLogger({ level: 'debug', console: false, file: { dir } });
    logger.info('enrolling with token', { token: JWT, ott: JWT, caUrl: 'https://ca.test' });
    logger.info(`sending ${JWT} to the CA`);
    logger.warn('key loaded', { privateKey: PEM, nested: { password: 'hunter2', enrollmentSecret: 'enroll-s3cret-value' } });
    logger.error('request failed', { headers: { authorization: 'Bearer bearer-t0ken-abcdef' }, adminToken: 'admin-t0ken-value' });
    logger.debug('jwk', { jwk: { kty: 'EC', d: 'd-component-value' } });
    logger.info(new Error(`bad key ${PEM}`).message);
    await new Promise<void>((resolve) => {
      logger.on('finish', resolve);
      logger.end();
    });
    await new Promise((r) => setTimeout(r, 50));
    const text = readFileSync(join(dir, 'vigil.log'), 'utf8');
    for (const s of SECRETS) expect(text).not.toContain(s);
    expect(text).toContain('https://ca.test');
    expect(text).toContain('[REDACTED]');
    expect(text).toContain('[REDACTED JWT]');
    expect(text).toContain('[REDACTED PRIVATE KEY]');
    expect(text.trim().split('\n')).toHaveLength(6);
    for (const line of text.trim().split('\n')) expect(() => JSON.parse(line) as unknown).not.toThrow();
  });

  it('survives cycles and keeps innocent values', () => {
    const a: Record<string, unknown> = { name: 'x', count: 2 };
    a.self = a;
    expect(redact(a)).toEqual({ name: 'x', count: 2, self: '[…]' });
  });

  it('redacts API tokens and enrollment secrets in free text, keeping their public id', () => {
    const token = `vgt_0123456789abcdef_${'A'.repeat(43)}`;
    const secret = `vges_fedcba9876543210_${'b'.repeat(43)}`;
    expect(redact({ message: `gateway used ${token}; device used ${secret}` })).toEqual({
      message: 'gateway used vgt_0123456789abcdef_[REDACTED]; device used vges_fedcba9876543210_[REDACTED]',
    });
  });
});
