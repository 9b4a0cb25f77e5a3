import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { readWin32Posture, type Win32Posture } from './probe.js';

/**
 * Boot options that switch off kernel code-signing or attach a kernel debugger, read from the registry copy of
 * the loader's command line (HKLM\SYSTEM\CurrentControlSet\Control\SystemStartOptions), which standard users can
 * read; bcdedit itself needs admin. Only what this boot actually used is visible, which is what matters.
 */
export function parseBootFlags(options: string): string[] {
  const flags: string[] = [];
  for (const raw of options.trim().split(/\s+/)) {
    const token = raw.toUpperCase();
    if (token === 'TESTSIGNING' || token === 'NOINTEGRITYCHECKS' || token === 'DISABLE_INTEGRITY_CHECKS') flags.push(token);
    else if (token === 'DEBUG' || token.startsWith('DEBUG=') || token.startsWith('DEBUGPORT=')) flags.push(token);
  }
  return flags;
}

export function judgeBootFlags(p: Pick<Win32Posture, 'bootOptions'>): Observation {
  const options = p.bootOptions.value;
  if (options === null) return { status: 'unknown', evidence: {}, reason: 'could not read the boot options' };
  const flags = parseBootFlags(options);
  const evidence = { systemStartOptions: options.trim(), unsafeFlags: flags };
  return flags.length === 0
    ? { status: 'pass', evidence, reason: 'Windows started with code signing enforced and no kernel debugger' }
    : { status: 'fail', evidence, reason: `Windows started with protections switched off: ${flags.join(', ')}` };
}

export const notRooted: PlatformCheck = {
  collect: async (ctx) => judgeBootFlags(await readWin32Posture(ctx)),
  remediation: {
    guides: [
      {
        label: 'Windows',
        steps: [
          'Contact IT: test-signing or kernel debugging is meant only for development machines.',
          'An administrator can turn them off by running `bcdedit /set testsigning off`, `bcdedit /set nointegritychecks off` and `bcdedit /debug off` in an elevated terminal.',
          'Restart the PC, then choose "Check again" in Vigil.',
        ],
        needsAdmin: true,
      },
    ],
  },
};
