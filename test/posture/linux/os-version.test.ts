import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { distroFamily, parseOsRelease } from '../../../src/posture/linux/os-release.js';
import { judgeOsVersion } from '../../../src/posture/linux/os-version.js';
import { bundledPolicy } from '../../../src/policy/load.js';

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/linux/os-release/${name}`, import.meta.url), 'utf8');
const { thresholds } = bundledPolicy();

describe('os-release parsing', () => {
  it('reads quoted and bare values', () => {
    const rel = parseOsRelease(fixture('ubuntu-24.04.txt'));
    expect(rel).toMatchObject({ id: 'ubuntu', idLike: ['debian'], versionId: '24.04', prettyName: 'Ubuntu 24.04.3 LTS', versionCodename: 'noble' });
    expect(distroFamily(rel)).toBe('debian');
  });

  it('treats an empty codename as absent and maps RHEL-likes to the fedora family', () => {
    expect(parseOsRelease(fixture('fedora-38-container.txt')).versionCodename).toBeUndefined();
    expect(distroFamily(parseOsRelease(fixture('centos-8.txt')))).toBe('fedora');
  });
});

describe('os-version judgement against the bundled policy', () => {
  it.each([
    ['ubuntu-24.04.txt', 'pass'],
    ['ubuntu-22.04.txt', 'pass'],
    ['debian-12.txt', 'pass'],
    ['fedora-38-container.txt', 'fail'],
    ['centos-8.txt', 'fail'],
  ] as const)('%s -> %s', (file, status) => {
    const obs = judgeOsVersion(parseOsRelease(fixture(file)), '6.8.0', thresholds);
    expect(obs.status).toBe(status);
    expect(obs.evidence.kernel).toBe('6.8.0');
  });

  it('says unknown, not pass, for a distribution the policy has no minimum for', () => {
    const obs = judgeOsVersion(parseOsRelease('ID=gentoo\nNAME=Gentoo\n'), '6.1', thresholds);
    expect(obs.status).toBe('unknown');
    expect(obs.reason).toContain('gentoo');
  });
});
