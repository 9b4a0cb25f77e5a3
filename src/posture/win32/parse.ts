/** Pure decoders for the Windows probe's raw values. */

export type SecurityCenterState = 'on' | 'off' | 'snoozed' | 'expired' | 'unknown';

export interface ProductState {
  state: SecurityCenterState;
  upToDate: boolean;
  /** 0x000100 in the provider byte is set for Microsoft's own products (Defender, Windows Firewall). */
  microsoft: boolean;
}

/**
 * SecurityCenter2 productState is an undocumented 24-bit value: bits 12-13 give the state (0 off, 1 on,
 * 2 snoozed, 3 expired), bits 4-7 the signature status (0 up to date, 1 out of date). Examples: 397568
 * (0x061100) Defender on and current, 393472 (0x060100) Defender off, 266240 (0x041000) a third-party AV on.
 */
export function decodeProductState(value: number): ProductState {
  const state = (['off', 'on', 'snoozed', 'expired'] as const)[(value >> 12) & 0x3] ?? 'unknown';
  return { state, upToDate: ((value >> 4) & 0xf) === 0, microsoft: ((value >> 8) & 0xf) === 1 };
}

/**
 * `dsregcmd /status` prints "Key : VALUE" lines under boxed section headings. The keys are not localized, so
 * the parse is by key; when a key repeats across sections the first one wins.
 */
export function parseDsregcmd(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z][\w-]*)\s*:\s*(.*?)\s*$/.exec(line);
    if (!m?.[1] || Object.hasOwn(out, m[1])) continue;
    out[m[1]] = m[2] ?? '';
  }
  return out;
}

/** A registry flag that may be a REG_DWORD (1) or a REG_SZ ("1"). */
export function regNumber(v: number | string | null | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) return Number(v);
  return undefined;
}

/** Windows' `Version` ("10.0.22631") plus the update build revision, e.g. "10.0.22631.4460". */
export function windowsVersion(version: string | null, ubr: number | string | null): string | null {
  if (version === null) return null;
  const rev = regNumber(ubr);
  return rev === undefined ? version : `${version}.${rev}`;
}

/** Dates from PowerShell: the probe sends ISO 8601, but PowerShell 5.1's own form "/Date(ms)/" is accepted too. */
export function parsePsDate(s: string | null): Date | undefined {
  if (s === null) return undefined;
  const ms = /^\/Date\((-?\d+)(?:[+-]\d{4})?\)\/$/.exec(s);
  const d = ms?.[1] ? new Date(Number(ms[1])) : new Date(s);
  return Number.isNaN(d.getTime()) ? undefined : d;
}
