import type { PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';

export type PasswordState = 'empty' | 'locked' | 'set';

/** The password field of a shadow(5) or passwd(5) line: empty = no password; `!`/`*` prefix = locked. */
export function classifyPasswordField(field: string): PasswordState {
  if (field === '') return 'empty';
  if (field.startsWith('!') || field.startsWith('*')) return 'locked';
  return 'set';
}

/** root's password field from shadow(5) or passwd(5) text, or undefined when there is no root line. */
export function rootPasswordField(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === 'root' && f.length >= 2) return f[1];
  }
  return undefined;
}

/**
 * `passwd -S root` status: shadow-utils prints `root P|NP|L ...`; Fedora's passwd prints `root PS|NP|LK ...`.
 * Undefined when the output is not a status line (e.g. the refusal printed to non-root users).
 */
export function parsePasswdStatus(out: string): PasswordState | undefined {
  const code = /^root\s+(\S+)/m.exec(out)?.[1];
  switch (code) {
    case 'NP':
      return 'empty';
    case 'L':
    case 'LK':
      return 'locked';
    case 'P':
    case 'PS':
      return 'set';
    default:
      return undefined;
  }
}

export function judgeRootPassword(state: PasswordState, source: string): Observation {
  const evidence = { state, source };
  return state === 'empty'
    ? { status: 'fail', evidence, reason: 'root has an empty password' }
    : { status: 'pass', evidence, reason: state === 'locked' ? 'root password is locked' : 'root has a password' };
}

export const rootEmptyPassword: PlatformCheck = {
  collect: async (ctx) => {
    // A password kept in passwd itself (no shadow) is world-readable, so an empty one shows here without root.
    const passwdField = rootPasswordField(await ctx.readFile('/etc/passwd'));
    if (passwdField !== undefined && passwdField !== 'x') return judgeRootPassword(classifyPasswordField(passwdField), '/etc/passwd');
    try {
      const shadowField = rootPasswordField(await ctx.readFile('/etc/shadow'));
      if (shadowField !== undefined) return judgeRootPassword(classifyPasswordField(shadowField), '/etc/shadow');
      return { status: 'unknown', evidence: { source: '/etc/shadow' }, reason: '/etc/shadow has no root entry' };
    } catch {
      // Expected without root (shadow is 0640 root:shadow); passwd -S is setuid and answers on some distributions.
    }
    try {
      const res = await ctx.run('passwd', ['-S', 'root']);
      const state = parsePasswdStatus(res.stdout);
      if (state) return judgeRootPassword(state, 'passwd -S root');
    } catch {
      // passwd missing: fall through to the same answer as a refusal.
    }
    return {
      status: 'unknown',
      evidence: { source: null },
      reason: 'requires-admin: /etc/shadow is readable only by root and `passwd -S root` refuses other users',
    };
  },
  remediation: {
    guides: [
      {
        label: 'Any distribution',
        steps: [
          'Open a terminal and run `sudo passwd -l root` to lock the root password (you keep using sudo with your own password).',
          'If you do not have sudo rights, ask IT to lock the root account.',
          'Choose "Check again" in Vigil.',
        ],
        needsAdmin: true,
      },
    ],
  },
};
