import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';

/** Kernel taint flags by bit (Documentation/admin-guide/tainted-kernels.rst). */
export const TAINT_FLAGS: readonly string[] = [
  'PROPRIETARY_MODULE',
  'FORCED_MODULE',
  'CPU_OUT_OF_SPEC',
  'FORCED_RMMOD',
  'MACHINE_CHECK',
  'BAD_PAGE',
  'USER',
  'DIE',
  'OVERRIDDEN_ACPI_TABLE',
  'WARN',
  'CRAP',
  'FIRMWARE_WORKAROUND',
  'OOT_MODULE',
  'UNSIGNED_MODULE',
  'SOFTLOCKUP',
  'LIVEPATCH',
  'AUX',
  'RANDSTRUCT',
  'TEST',
];

/**
 * Taints that mean code got into the kernel past its checks: a module loaded with --force (bit 1) or one
 * without a valid signature (bit 13). Rootkits arrive this way. Other taints (proprietary drivers, warnings,
 * live patches) describe a healthy if unusual kernel and stay evidence only.
 */
const INTEGRITY_TAINTS = new Set(['FORCED_MODULE', 'UNSIGNED_MODULE']);

export function decodeTaint(value: number): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    if (Math.floor(value / 2 ** bit) % 2 === 1) names.push(TAINT_FLAGS[bit] ?? `BIT_${bit}`);
  }
  return names;
}

/** Libraries named in /etc/ld.so.preload (comments and blank lines dropped). */
export function parseLdSoPreload(text: string): string[] {
  return text
    .split('\n')
    .flatMap((line) => line.replace(/#.*/, '').split(/[\s:]+/))
    .filter(Boolean);
}

/** `[none] integrity confidentiality` -> "none". */
export function parseLockdown(text: string): string | null {
  return /\[(\w+)\]/.exec(text)?.[1] ?? null;
}

export interface IntegritySignals {
  /** null when /etc/ld.so.preload does not exist. */
  preload: string[] | null;
  /** null when /proc/sys/kernel/tainted was unreadable. */
  taint: number | null;
  lockdown: string | null;
}

/**
 * "Not rooted" on Linux: nothing forces extra code into every process (ld.so.preload is the classic
 * user-space rootkit hook) and no module entered the kernel by force or unsigned. Signals readable without
 * root; the user having root via sudo is normal on Linux and is not what this check is about.
 */
export function judgeIntegrity(s: IntegritySignals): Observation {
  const taintFlags = s.taint === null ? null : decodeTaint(s.taint);
  const evidence = {
    definition: 'fails on a non-empty /etc/ld.so.preload or a kernel tainted by a forced or unsigned module',
    ldSoPreload: s.preload,
    taint: s.taint,
    taintFlags,
    lockdown: s.lockdown,
  };
  const problems: string[] = [];
  if (s.preload !== null && s.preload.length > 0) problems.push(`/etc/ld.so.preload injects ${s.preload.join(', ')}`);
  const bad = (taintFlags ?? []).filter((f) => INTEGRITY_TAINTS.has(f));
  if (bad.length > 0) problems.push(`the kernel is tainted: ${bad.join(', ')}`);
  if (problems.length > 0) return { status: 'fail', evidence, reason: problems.join('; ') };
  if (s.taint === null) return { status: 'unknown', evidence, reason: '/proc/sys/kernel/tainted is unreadable' };
  return { status: 'pass', evidence, reason: 'no preload hook and no forced or unsigned kernel modules' };
}

async function optional(p: Promise<string>): Promise<string | null> {
  try {
    return await p;
  } catch {
    return null;
  }
}

export const notRooted: PlatformCheck = {
  collect: async (ctx) => {
    const [preload, taint, lockdown] = await Promise.all([
      optional(ctx.readFile('/etc/ld.so.preload')),
      optional(ctx.readFile('/proc/sys/kernel/tainted')),
      // securityfs is often not mounted or not readable without root; lockdown is evidence only.
      optional(ctx.readFile('/sys/kernel/security/lockdown')),
    ]);
    const t = taint === null ? Number.NaN : Number.parseInt(taint.trim(), 10);
    return judgeIntegrity({
      preload: preload === null ? null : parseLdSoPreload(preload),
      taint: Number.isFinite(t) ? t : null,
      lockdown: lockdown === null ? null : parseLockdown(lockdown),
    });
  },
  remediation: {
    guides: [
      {
        label: 'Any distribution',
        steps: [
          'Stop using the device for work and contact IT security now: these are signs the system may have been tampered with.',
          'Do not try to clean it yourself; IT will check it and usually reinstall it.',
        ],
        needsAdmin: true,
      },
    ],
  },
};
