import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { regNumber } from './parse.js';
import { readWin32Posture, type Win32Posture } from './probe.js';

/** EnableLUA 0 turns UAC off entirely; ConsentPromptBehaviorAdmin 0 elevates admins without asking. */
export function judgeUac(p: Pick<Win32Posture, 'uac'>): Observation {
  const u = p.uac.value;
  const lua = regNumber(u?.EnableLUA ?? null);
  const consent = regNumber(u?.ConsentPromptBehaviorAdmin ?? null);
  const evidence = { EnableLUA: lua ?? null, ConsentPromptBehaviorAdmin: consent ?? null };
  if (lua === undefined) return { status: 'unknown', evidence, reason: 'could not read the UAC setting' };
  if (lua === 0) return { status: 'fail', evidence, reason: 'User Account Control is off' };
  if (consent === 0) return { status: 'fail', evidence, reason: 'administrators are elevated without a prompt' };
  return { status: 'pass', evidence, reason: 'User Account Control is on' };
}

export const uac: PlatformCheck = {
  collect: async (ctx) => judgeUac(await readWin32Posture(ctx)),
  remediation: {
    guides: [
      {
        label: 'Windows',
        steps: [
          'Press Start, type "UAC" and open "Change User Account Control settings".',
          'Move the slider to "Notify me only when apps try to make changes to my computer (default)" or higher, and click OK.',
          'If the slider is greyed out, a company policy sets it: contact IT.',
          'Restart the PC, then choose "Check again" in Vigil.',
        ],
        deepLink: 'windows-uac',
        needsAdmin: true,
      },
    ],
  },
};
