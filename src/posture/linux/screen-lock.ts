import type { CollectContext, PlatformCheck } from '../collector.js';
import { CommandNotFoundError } from '../exec.js';
import type { Observation } from '../types.js';
import type { Desktop } from '../remediation/types.js';

/** Parses a GVariant boolean as `gsettings get` prints it. */
export function parseGVariantBool(text: string): boolean | undefined {
  const t = text.trim();
  if (t === 'true') return true;
  if (t === 'false') return false;
  return undefined;
}

/** Parses a GVariant integer as `gsettings get` prints it: `uint32 300`, `@u 300` or a bare `300` (int32). */
export function parseGVariantInt(text: string): number | undefined {
  const m = /^(?:(?:u?int(?:16|32|64)|byte|@[nqiuxt])\s+)?(-?\d+)$/.exec(text.trim());
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** Which desktop's settings to read, from XDG_CURRENT_DESKTOP (colon-separated, e.g. "ubuntu:GNOME") or DESKTOP_SESSION. */
export function detectDesktop(env: NodeJS.ProcessEnv): { desktop: Desktop | 'other'; name: string } | undefined {
  const names = [...(env.XDG_CURRENT_DESKTOP ?? '').split(':'), env.DESKTOP_SESSION ?? '']
    .map((n) => n.trim())
    .filter(Boolean);
  if (names.length === 0) return undefined;
  const lower = names.map((n) => n.toLowerCase());
  if (lower.some((n) => n === 'kde' || n.startsWith('plasma'))) return { desktop: 'kde', name: names.join(':') };
  // Ubuntu's session and GNOME Classic both run GNOME Shell and read the GNOME keys.
  if (lower.some((n) => n === 'gnome' || n === 'ubuntu' || n.startsWith('gnome-'))) return { desktop: 'gnome', name: names.join(':') };
  return { desktop: 'other', name: names.join(':') };
}

export interface LockSettings {
  desktop: Desktop;
  lockEnabled: boolean;
  /** Seconds of inactivity before the screen blanks; 0 means never. */
  idleSeconds: number;
  /** Seconds between blanking and locking (GNOME lock-delay, KDE LockGrace). */
  lockDelaySeconds: number;
  /** An administrator has removed the ability to lock (GNOME lockdown). */
  lockDisabledByPolicy?: boolean;
}

/**
 * A grace period this short is the desktops' own default (KDE 5 s, GNOME 0 s) and leaves no real window,
 * so the policy's idle limit applies to the idle time alone; a longer one is added, since until it ends
 * anyone can wake the screen without a password.
 */
export const IGNORED_GRACE_SECONDS = 30;

export function judgeScreenLock(s: LockSettings, maxSeconds: number): Observation {
  const effective = s.idleSeconds + (s.lockDelaySeconds > IGNORED_GRACE_SECONDS ? s.lockDelaySeconds : 0);
  const evidence = {
    desktop: s.desktop,
    lockEnabled: s.lockEnabled,
    idleSeconds: s.idleSeconds,
    lockDelaySeconds: s.lockDelaySeconds,
    effectiveLockSeconds: s.idleSeconds === 0 ? null : effective,
    maxSeconds,
    lockDisabledByPolicy: s.lockDisabledByPolicy ?? false,
  };
  if (s.lockDisabledByPolicy) return { status: 'fail', evidence, reason: 'locking the screen is disabled by a system policy' };
  if (!s.lockEnabled) return { status: 'fail', evidence, reason: 'automatic screen lock is off' };
  if (s.idleSeconds === 0) return { status: 'fail', evidence, reason: 'the screen never goes idle, so it never locks' };
  if (effective > maxSeconds) {
    return { status: 'fail', evidence, reason: `the screen locks after ${effective} s of inactivity; the policy allows at most ${maxSeconds} s` };
  }
  return { status: 'pass', evidence, reason: `the screen locks after ${effective} s of inactivity` };
}

/** A KConfig file: [Group] headers (nested groups as [A][B]) and key=value lines; `key[$i]` marks a kiosk-locked key. */
export function parseKConfig(text: string): Map<string, Map<string, { value: string; immutable: boolean }>> {
  const groups = new Map<string, Map<string, { value: string; immutable: boolean }>>();
  let current: Map<string, { value: string; immutable: boolean }> | undefined;
  let groupImmutable = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      groupImmutable = line.endsWith('[$i]');
      const name = line.replace(/\[\$i\]$/, '');
      current = groups.get(name) ?? new Map<string, { value: string; immutable: boolean }>();
      groups.set(name, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq <= 0) continue;
    const rawKey = line.slice(0, eq).trim();
    const immutable = groupImmutable || rawKey.endsWith('[$i]');
    current.set(rawKey.replace(/\[\$i\]$/, ''), { value: line.slice(eq + 1).trim(), immutable });
  }
  return groups;
}

/**
 * KDE's screen locker settings. The system file (/etc/xdg) supplies defaults and can lock keys; the user
 * file overrides the rest. Built-in defaults (kscreenlocker's kcfg): Autolock true, Timeout 5 minutes,
 * LockGrace 5 seconds.
 */
export function kdeLockSettings(userText: string | null, systemText: string | null): LockSettings {
  const sys = parseKConfig(systemText ?? '').get('[Daemon]');
  const user = parseKConfig(userText ?? '').get('[Daemon]');
  const get = (key: string): string | undefined => {
    const s = sys?.get(key);
    if (s?.immutable) return s.value;
    return user?.get(key)?.value ?? s?.value;
  };
  const int = (key: string, fallback: number): number => {
    const v = Number.parseInt(get(key) ?? '', 10);
    return Number.isFinite(v) && v >= 0 ? v : fallback;
  };
  return {
    desktop: 'kde',
    lockEnabled: (get('Autolock') ?? 'true').toLowerCase() !== 'false',
    idleSeconds: int('Timeout', 5) * 60,
    lockDelaySeconds: int('LockGrace', 5),
  };
}

async function gsettingsGet(ctx: CollectContext, schema: string, key: string): Promise<string> {
  const res = await ctx.run('gsettings', ['get', schema, key]);
  if (res.code !== 0) throw new Error(`gsettings get ${schema} ${key} failed: ${res.stderr.trim()}`);
  return res.stdout;
}

export async function gnomeLockSettings(ctx: CollectContext): Promise<LockSettings> {
  const [enabled, idle, delay, lockdown] = await Promise.all([
    gsettingsGet(ctx, 'org.gnome.desktop.screensaver', 'lock-enabled'),
    gsettingsGet(ctx, 'org.gnome.desktop.session', 'idle-delay'),
    gsettingsGet(ctx, 'org.gnome.desktop.screensaver', 'lock-delay'),
    gsettingsGet(ctx, 'org.gnome.desktop.lockdown', 'disable-lock-screen'),
  ]);
  const lockEnabled = parseGVariantBool(enabled);
  const idleSeconds = parseGVariantInt(idle);
  const lockDelaySeconds = parseGVariantInt(delay);
  if (lockEnabled === undefined || idleSeconds === undefined || lockDelaySeconds === undefined) {
    throw new Error(`unexpected gsettings output: ${JSON.stringify({ enabled, idle, delay })}`);
  }
  return { desktop: 'gnome', lockEnabled, idleSeconds, lockDelaySeconds, lockDisabledByPolicy: parseGVariantBool(lockdown) === true };
}

async function readOptional(ctx: CollectContext, path: string): Promise<string | null> {
  try {
    return await ctx.readFile(path);
  } catch {
    return null;
  }
}

export const screenLock: PlatformCheck = {
  collect: async (ctx) => {
    const session = detectDesktop(ctx.env);
    if (!session) return { status: 'unknown', evidence: { desktop: null }, reason: 'no graphical session' };
    const max = ctx.thresholds.maxScreenLockIdleSeconds;
    if (session.desktop === 'kde') {
      const home = ctx.env.HOME ?? '';
      const configHome = ctx.env.XDG_CONFIG_HOME || `${home}/.config`;
      const [user, system] = await Promise.all([readOptional(ctx, `${configHome}/kscreenlockerrc`), readOptional(ctx, '/etc/xdg/kscreenlockerrc')]);
      return judgeScreenLock(kdeLockSettings(user, system), max);
    }
    if (session.desktop === 'gnome') {
      try {
        return judgeScreenLock(await gnomeLockSettings(ctx), max);
      } catch (err) {
        if (err instanceof CommandNotFoundError) return { status: 'unknown', evidence: { desktop: 'gnome' }, reason: 'gsettings is not installed' };
        throw err;
      }
    }
    return { status: 'unknown', evidence: { desktop: session.name }, reason: `screen lock settings of the "${session.name}" desktop are not supported` };
  },
  remediation: {
    guides: [
      {
        label: 'GNOME',
        when: { desktop: 'gnome' },
        steps: [
          'Open Settings > Privacy (Privacy & Security > Screen Lock on newer versions), switch "Automatic Screen Lock" on and set "Automatic Screen Lock Delay" to "Screen Turns Off".',
          'Open Settings > Power and set "Screen Blank" to 5 minutes or less.',
          'Open Vigil and choose "Check again".',
        ],
        deepLink: 'gnome-privacy',
        needsAdmin: false,
      },
      {
        label: 'KDE Plasma',
        when: { desktop: 'kde' },
        steps: [
          'Open System Settings > Screen Locking, tick "Lock screen automatically" and set it to 5 minutes or less.',
          'Set "Allow unlocking without password for" to 0 seconds, then choose "Apply".',
          'Open Vigil and choose "Check again".',
        ],
        deepLink: 'kde-screenlocker',
        needsAdmin: false,
      },
      {
        label: 'Other desktops',
        steps: [
          'In your desktop settings, turn on automatic screen locking after 5 minutes of inactivity or less.',
          'Open Vigil and choose "Check again".',
        ],
        needsAdmin: false,
      },
    ],
  },
};
