import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { findEdr } from '../edr-processes.js';
import { decodeProductState } from './parse.js';
import { readWin32Posture, type Win32Posture } from './probe.js';

/** Process names (without .exe) of endpoint protection agents on Windows, mapped to the product. */
export const WIN32_EDR_PROCESSES: Readonly<Record<string, string>> = {
  MsSense: 'Microsoft Defender for Endpoint',
  CSFalconService: 'CrowdStrike Falcon',
  SentinelAgent: 'SentinelOne',
  SentinelServiceHost: 'SentinelOne',
  RepMgr: 'VMware Carbon Black',
  'elastic-endpoint': 'Elastic Defend',
  cyserver: 'Palo Alto Cortex XDR',
  SophosHealth: 'Sophos',
  ekrn: 'ESET',
};

/** AMRunningMode values in which Defender itself blocks threats ("Passive Mode" and "SxS Passive Mode" do not). */
const ACTIVE_MODES = new Set(['Normal', 'EDR Block Mode']);

/**
 * Get-MpComputerStatus reports a signature age of 65535 or 4294967295 (UInt32 max) when Defender has never
 * loaded signatures (recorded on machines where another antivirus turned it off); that is no age at all.
 */
export function defenderSignatureAge(age: number | null | undefined): number | null {
  return age === null || age === undefined || age >= 65_535 ? null : age;
}

/**
 * Protected when Defender is the active antivirus with real-time protection and fresh signatures, when
 * SecurityCenter2 lists another antivirus that is on and up to date (Defender then runs passive), or when a
 * known EDR agent runs.
 */
export function judgeWin32Edr(p: Pick<Win32Posture, 'defender' | 'antivirusProducts' | 'processes'>, maxSignatureAgeDays: number): Observation {
  const d = p.defender.value;
  const products = p.antivirusProducts.value.map((a) => {
    const s = a.productState === null ? undefined : decodeProductState(a.productState);
    return { name: a.displayName ?? '?', state: s?.state ?? 'unknown', upToDate: s?.upToDate ?? null, microsoft: s?.microsoft ?? null };
  });
  const thirdParty = products.filter((a) => a.microsoft === false && a.state === 'on' && a.upToDate === true).map((a) => a.name);
  const edr = findEdr(p.processes.value.join('\n'), WIN32_EDR_PROCESSES);
  const defenderActive =
    d !== null &&
    d.AMServiceEnabled === true &&
    d.AntivirusEnabled === true &&
    d.RealTimeProtectionEnabled === true &&
    (d.AMRunningMode === null || ACTIVE_MODES.has(d.AMRunningMode));
  const signatureAge = defenderSignatureAge(d?.AntivirusSignatureAge);
  const signatureFresh = signatureAge !== null && signatureAge <= maxSignatureAgeDays;
  const evidence = {
    defender: d === null ? null : { runningMode: d.AMRunningMode, realTime: d.RealTimeProtectionEnabled, signatureAgeDays: signatureAge },
    securityCenter: products.map((a) => ({ name: a.name, state: a.state, upToDate: a.upToDate })),
    edrProcesses: edr,
  };
  if (defenderActive && signatureFresh) return { status: 'pass', evidence, reason: 'Microsoft Defender Antivirus is on and up to date' };
  if (thirdParty.length > 0) return { status: 'pass', evidence, reason: `active antivirus: ${thirdParty.join(', ')}` };
  if (edr.length > 0) return { status: 'pass', evidence, reason: `running: ${edr.join(', ')}` };
  if (defenderActive) {
    return signatureAge === null
      ? { status: 'fail', evidence, reason: 'Defender reports no signature update' }
      : { status: 'fail', evidence, reason: `Defender signatures are ${signatureAge} days old (allowed: ${maxSignatureAgeDays})` };
  }
  if (d === null && p.antivirusProducts.error !== null) {
    return { status: 'unknown', evidence, reason: 'neither Defender nor Windows Security Center could be queried' };
  }
  const off = products.filter((a) => a.state !== 'on').map((a) => a.name);
  return {
    status: 'fail',
    evidence,
    reason: off.length > 0 ? `antivirus turned off or out of date: ${off.join(', ')}` : 'no active antivirus or EDR found',
  };
}

export const edrRunning: PlatformCheck = {
  collect: async (ctx) => judgeWin32Edr(await readWin32Posture(ctx), ctx.thresholds.maxSignatureAgeDays),
  remediation: {
    guides: [
      {
        label: 'Windows',
        steps: [
          'Open Start > Windows Security > Virus & threat protection.',
          'Under "Virus & threat protection settings", click "Manage settings" and turn on Real-time protection.',
          'Under "Virus & threat protection updates", click "Protection updates" > "Check for updates".',
          'If your company uses another antivirus, open it and make sure it is on and updated, or ask IT to reinstall it.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-virus-protection',
        needsAdmin: false,
      },
    ],
  },
};
