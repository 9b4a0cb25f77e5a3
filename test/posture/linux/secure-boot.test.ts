import { describe, expect, it } from 'vitest';
import {
  createSecureBootCollector,
  EFIVARS_SECURE_BOOT,
  parseMokutilSbState,
  parseSecureBootVariable,
} from '../../../src/posture/linux/secure-boot.js';
import { fakeContext, fixture, fixtureBytes, ok } from './fake-context.js';

const noBytes = () => Promise.reject(new Error('ENOENT'));

describe('parsers', () => {
  it('reads mokutil --sb-state output', () => {
    expect(parseMokutilSbState(fixture('secure-boot/mokutil-enabled.txt'))).toEqual({ state: 'enabled', setupMode: false });
    expect(parseMokutilSbState(fixture('secure-boot/mokutil-disabled-setup-mode.txt'))).toEqual({ state: 'disabled', setupMode: true });
    expect(parseMokutilSbState(fixture('secure-boot/mokutil-no-efi.txt'))?.state).toBe('unsupported');
    expect(parseMokutilSbState('')).toBeUndefined();
  });

  it('reads the efivar value byte after the four attribute bytes', () => {
    expect(parseSecureBootVariable(fixtureBytes('secure-boot/efivar-SecureBoot-on.bin'))).toBe(true);
    expect(parseSecureBootVariable(fixtureBytes('secure-boot/efivar-SecureBoot-off.bin'))).toBe(false);
    expect(parseSecureBootVariable(new Uint8Array([6, 0, 0, 0]))).toBeUndefined();
    expect(parseSecureBootVariable(new Uint8Array([1]), false)).toBe(true);
  });
});

describe('collector', () => {
  const uefi = { '/sys/firmware': ['acpi', 'efi', 'memmap'] };

  it('fails a legacy BIOS boot (this CI machine has no /sys/firmware/efi)', async () => {
    const ctx = fakeContext({ dirs: { '/sys/firmware': fixture('secure-boot/ci-sys-firmware.txt').trim().split('\n') } });
    expect(await createSecureBootCollector(noBytes)(ctx)).toEqual({ status: 'fail', evidence: { uefi: false }, reason: 'legacy BIOS boot (no UEFI)' });
  });

  it('is unknown when /sys/firmware is hidden, as in a container', async () => {
    expect((await createSecureBootCollector(noBytes)(fakeContext({}))).status).toBe('unknown');
  });

  it('trusts mokutil when present', async () => {
    const ctx = fakeContext({ dirs: uefi, commands: { 'mokutil --sb-state': ok(fixture('secure-boot/mokutil-disabled-setup-mode.txt')) } });
    expect(await createSecureBootCollector(noBytes)(ctx)).toMatchObject({ status: 'fail', evidence: { source: 'mokutil', setupMode: true } });
  });

  it('falls back to the efivar without mokutil', async () => {
    const read = (p: string) => (p === EFIVARS_SECURE_BOOT ? Promise.resolve(fixtureBytes('secure-boot/efivar-SecureBoot-on.bin')) : noBytes());
    expect(await createSecureBootCollector(read)(fakeContext({ dirs: uefi }))).toMatchObject({ status: 'pass', evidence: { source: EFIVARS_SECURE_BOOT } });
  });

  it('fails UEFI firmware with no SecureBoot variable at all', async () => {
    expect((await createSecureBootCollector(noBytes)(fakeContext({ dirs: uefi }))).status).toBe('fail');
  });
});
