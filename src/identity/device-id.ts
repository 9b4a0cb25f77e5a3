import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { run } from '../posture/exec.js';
import type { Platform } from '../posture/types.js';

export type DeviceIdSource = 'hardware-uuid' | 'hardware-serial' | 'machine-id';

export interface DeviceIdCandidate {
  source: DeviceIdSource;
  value: string;
}

export interface DeviceId {
  id: string;
  source: DeviceIdSource;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lower case, unpadded: DNS-label safe, unlike base64. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32.charAt((acc >>> (bits - 5)) & 31);
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32.charAt((acc << (5 - bits)) & 31);
  return out;
}

/**
 * Firmware often fills these fields with placeholders; a placeholder shared by thousands of machines would
 * give them all the same identity.
 */
const PLACEHOLDERS = new Set([
  'none',
  'null',
  'default string',
  'to be filled by o.e.m.',
  'system serial number',
  'not specified',
  'not applicable',
  '0123456789',
  '123456789',
  // AMI firmware's default UUID, shipped unchanged on many boards.
  '03000200-0400-0500-0006-000700080009',
]);

export function isPlausibleHardwareValue(raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (v.length < 4 || PLACEHOLDERS.has(v)) return false;
  return !/^(0+|f+)$/.test(v.replace(/-/g, ''));
}

/**
 * Hashes rather than shows the raw value: a serial number is a tracking identifier, and the ID ends up in
 * certificates, logs and DNS names. 128 bits keeps collisions out of reach for any fleet size.
 */
export function deriveDeviceId(candidate: DeviceIdCandidate): DeviceId {
  const normalized = candidate.value.trim().toLowerCase();
  const digest = createHash('sha256').update(`vigil-device-id:v1:${candidate.source}:${normalized}`).digest();
  return { id: base32(digest.subarray(0, 16)), source: candidate.source };
}

/** First plausible candidate wins; order is strongest-to-weakest stability across reinstalls. */
export function pickDeviceId(candidates: readonly DeviceIdCandidate[]): DeviceId | undefined {
  const order: DeviceIdSource[] = ['hardware-uuid', 'hardware-serial', 'machine-id'];
  for (const source of order) {
    const c = candidates.find((x) => x.source === source && isPlausibleHardwareValue(x.value));
    if (c) return deriveDeviceId(c);
  }
  return undefined;
}

/**
 * `ioreg -rd1 -c IOPlatformExpertDevice` output -> IOPlatformUUID and IOPlatformSerialNumber. A value must close
 * on its own line: ioreg clips lines at the terminal width ("...$", no closing quote), and a clipped value must
 * not run on to the next line's quote and become an ID.
 */
export function parseIoreg(text: string): DeviceIdCandidate[] {
  const out: DeviceIdCandidate[] = [];
  const uuid = /"IOPlatformUUID"[ \t]*=[ \t]*"([^"\r\n]+)"/.exec(text)?.[1];
  const serial = /"IOPlatformSerialNumber"[ \t]*=[ \t]*"([^"\r\n]+)"/.exec(text)?.[1];
  if (uuid) out.push({ source: 'hardware-uuid', value: uuid });
  if (serial) out.push({ source: 'hardware-serial', value: serial });
  return out;
}

/**
 * ioreg clips every line to a width it takes from stdout's terminal, or failing that from stdin's
 * (IOKitTools ioreg.c: TIOCGWINSZ on stdout, then stdin), so a piped stdout alone does not prevent clipping
 * when the agent is started from a terminal. `-w0` asks for unlimited width, so no UUID or serial is cut.
 */
export const IOREG_ARGS = ['-w0', '-rd1', '-c', 'IOPlatformExpertDevice'] as const;

/** `reg query HKLM\SOFTWARE\Microsoft\Cryptography /v MachineGuid` output -> the GUID. */
export function parseRegMachineGuid(text: string): DeviceIdCandidate[] {
  const guid = /MachineGuid\s+REG_SZ\s+(\S+)/i.exec(text)?.[1];
  return guid ? [{ source: 'machine-id', value: guid }] : [];
}

async function readTrimmed(path: string): Promise<string | undefined> {
  try {
    const s = (await readFile(path, 'utf8')).trim();
    return s || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Gathers candidates from the OS. On Linux the DMI files are root-only, so a user-mode agent falls back to
 * /etc/machine-id; the ID chosen at enrollment is then persisted, so a later switch does not change it.
 */
export async function readDeviceIdCandidates(platform: Platform = process.platform as Platform): Promise<DeviceIdCandidate[]> {
  switch (platform) {
    case 'linux': {
      const out: DeviceIdCandidate[] = [];
      const uuid = await readTrimmed('/sys/class/dmi/id/product_uuid');
      if (uuid) out.push({ source: 'hardware-uuid', value: uuid });
      const serial = await readTrimmed('/sys/class/dmi/id/product_serial');
      if (serial) out.push({ source: 'hardware-serial', value: serial });
      const mid = (await readTrimmed('/etc/machine-id')) ?? (await readTrimmed('/var/lib/dbus/machine-id'));
      if (mid) out.push({ source: 'machine-id', value: mid });
      return out;
    }
    case 'darwin': {
      const r = await run('ioreg', [...IOREG_ARGS]).catch(() => undefined);
      return r?.code === 0 ? parseIoreg(r.stdout) : [];
    }
    case 'win32': {
      const r = await run('reg', ['query', 'HKLM\\SOFTWARE\\Microsoft\\Cryptography', '/v', 'MachineGuid']).catch(
        () => undefined,
      );
      return r?.code === 0 ? parseRegMachineGuid(r.stdout) : [];
    }
  }
}

export async function detectDeviceId(platform?: Platform): Promise<DeviceId> {
  const id = pickDeviceId(await readDeviceIdCandidates(platform));
  if (!id) throw new Error('cannot derive a device ID: no hardware UUID, serial number or machine-id is readable');
  return id;
}
