import { describe, expect, it } from 'vitest';
import {
  classifyPasswordField,
  judgeRootPassword,
  parsePasswdStatus,
  rootPasswordField,
  rootEmptyPassword,
} from '../../../src/posture/linux/root-empty-password.js';
import { FactStore } from '../../../src/posture/facts.js';
import type { CollectContext } from '../../../src/posture/collector.js';
import { thresholdsSchema } from '../../../src/policy/schema.js';
import { fixture } from './fixture.js';

describe('shadow fields', () => {
  it('reads root as locked from this machine', () => {
    const field = rootPasswordField(fixture('shadow-root.debian12.txt'));
    expect(field).toBe('*');
    expect(classifyPasswordField(field ?? '')).toBe('locked');
  });

  it('classifies empty, locked and hashed fields', () => {
    expect(classifyPasswordField('')).toBe('empty');
    expect(classifyPasswordField('!')).toBe('locked');
    expect(classifyPasswordField('!*')).toBe('locked');
    expect(classifyPasswordField('!$6$salt$hash')).toBe('locked');
    expect(classifyPasswordField('$y$j9T$salt$hash')).toBe('set');
    // Alpine's root line in its Docker images before CVE-2019-5021 was fixed: "root:::0:::::".
    expect(judgeRootPassword(classifyPasswordField(rootPasswordField('root:::0:::::') ?? 'x'), '/etc/shadow').status).toBe('fail');
  });
});

describe('parsePasswdStatus', () => {
  it('reads shadow-utils output recorded on this machine', () => {
    expect(parsePasswdStatus(fixture('passwd-S-root.debian12.txt'))).toBe('locked');
  });

  it('does not read the refusal non-root users get', () => {
    expect(parsePasswdStatus(fixture('passwd-S-root-nonroot.debian12.txt'))).toBeUndefined();
  });

  it('maps Fedora codes', () => {
    expect(parsePasswdStatus('root NP 2024-01-01 0 99999 7 -1 (Empty password.)')).toBe('empty');
    expect(parsePasswdStatus('root PS 2024-01-01 0 99999 7 -1 (Password set, SHA512 crypt.)')).toBe('set');
  });
});

describe('collector without root', () => {
  it('is unknown requires-admin when shadow is unreadable and passwd refuses', async () => {
    const ctx: CollectContext = {
      facts: new FactStore(1000),
      thresholds: thresholdsSchema.parse({}),
      signal: new AbortController().signal,
      run: () => Promise.resolve({ code: 1, stdout: '', stderr: fixture('passwd-S-root-nonroot.debian12.txt') }),
      readFile: (p) => (p === '/etc/passwd' ? Promise.resolve('root:x:0:0:root:/root:/bin/bash\n') : Promise.reject(new Error('EACCES'))),
      readdir: () => Promise.resolve([]),
      env: {},
      now: () => new Date(),
    };
    const o = await rootEmptyPassword.collect(ctx);
    expect(o.status).toBe('unknown');
    expect(o.reason).toMatch(/^requires-admin: /);
  });
});
