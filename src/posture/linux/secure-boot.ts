import { readFile } from 'node:fs/promises';
import type { CollectContext, PlatformCheck } from '../collector.js';
import { CommandNotFoundError } from '../exec.js';
import type { Observation } from '../types.js';

const GLOBAL_VARIABLE_GUID = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
export const EFIVARS_SECURE_BOOT = `/sys/firmware/efi/efivars/SecureBoot-${GLOBAL_VARIABLE_GUID}`;
/** The pre-efivarfs sysfs interface: the `data` file holds the value without attribute bytes. */
export const LEGACY_SECURE_BOOT = `/sys/firmware/efi/vars/SecureBoot-${GLOBAL_VARIABLE_GUID}/data`;

export type SecureBootState = 'enabled' | 'disabled' | 'unsupported';

/** Parses `mokutil --sb-state`: "SecureBoot enabled", "SecureBoot disabled", or a line saying EFI variables are unsupported. */
export function parseMokutilSbState(text: string): { state: SecureBootState; setupMode: boolean } | undefined {
  const setupMode = /setup mode/i.test(text);
  if (/^SecureBoot enabled/im.test(text)) return { state: 'enabled', setupMode };
  if (/^SecureBoot disabled/im.test(text)) return { state: 'disabled', setupMode };
  if (/not supported|doesn't support/i.test(text)) return { state: 'unsupported', setupMode };
  return undefined;
}

/**
 * An efivarfs file is a 4-byte little-endian attribute word followed by the value; for SecureBoot the
 * value is one byte, 1 meaning on. The legacy sysfs `data` file has only the value byte.
 */
export function parseSecureBootVariable(bytes: Uint8Array, withAttributes = true): boolean | undefined {
  const value = bytes[withAttributes ? 4 : 0];
  if (value === undefined) return undefined;
  return value === 1;
}

export type ByteReader = (path: string) => Promise<Uint8Array>;

async function readVariable(read: ByteReader): Promise<{ on: boolean; source: string } | undefined> {
  for (const [path, withAttributes] of [
    [EFIVARS_SECURE_BOOT, true],
    [LEGACY_SECURE_BOOT, false],
  ] as const) {
    try {
      const on = parseSecureBootVariable(await read(path), withAttributes);
      if (on !== undefined) return { on, source: path };
    } catch {
      // Absent: firmware without Secure Boot support, or the other interface is mounted.
    }
  }
  return undefined;
}

function verdict(on: boolean, evidence: Observation['evidence']): Observation {
  return on
    ? { status: 'pass', evidence, reason: 'Secure Boot is on' }
    : { status: 'fail', evidence, reason: 'Secure Boot is off in the firmware settings' };
}

/**
 * `read` reads a file as bytes; the collect context only reads text, and an efivar is binary.
 * Injected so tests can hand it recorded variables.
 */
export function createSecureBootCollector(read: ByteReader = (p) => readFile(p)) {
  return async (ctx: CollectContext): Promise<Observation> => {
    let firmware: string[];
    try {
      firmware = await ctx.readdir('/sys/firmware');
    } catch {
      return { status: 'unknown', evidence: { firmware: null }, reason: '/sys/firmware is not visible (container?), so the boot mode cannot be seen' };
    }
    if (!firmware.includes('efi')) {
      return { status: 'fail', evidence: { uefi: false }, reason: 'legacy BIOS boot (no UEFI)' };
    }
    // Only changes across a reboot, and the agent restarts with the machine.
    return ctx.facts.static('linux.secure-boot', async (): Promise<Observation> => {
      try {
        const res = await ctx.run('mokutil', ['--sb-state']);
        const parsed = parseMokutilSbState(`${res.stdout}\n${res.stderr}`);
        if (parsed && parsed.state !== 'unsupported') {
          return verdict(parsed.state === 'enabled', { uefi: true, source: 'mokutil', state: parsed.state, setupMode: parsed.setupMode });
        }
      } catch (err) {
        if (!(err instanceof CommandNotFoundError)) throw err;
      }
      const variable = await readVariable(read);
      if (!variable) {
        return { status: 'fail', evidence: { uefi: true, source: null }, reason: 'the firmware has no SecureBoot variable, so it does not support Secure Boot' };
      }
      return verdict(variable.on, { uefi: true, source: variable.source, state: variable.on ? 'enabled' : 'disabled' });
    });
  };
}

export const secureBoot: PlatformCheck = {
  collect: createSecureBootCollector(),
  remediation: {
    guides: [
      {
        label: 'All distributions',
        steps: [
          'Ask IT to turn on Secure Boot in the firmware (BIOS/UEFI) settings: it is done once at start-up and can stop the system from starting if done wrong.',
          'Save your work; IT will restart the laptop, open the firmware settings (usually F2, F10, F12 or Del at power-on) and enable Secure Boot.',
          'After the restart, open Vigil and choose "Check again".',
        ],
        needsAdmin: true,
      },
    ],
  },
};
