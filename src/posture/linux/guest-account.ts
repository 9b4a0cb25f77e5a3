import type { CollectContext, PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';

/**
 * The effective `allow-guest` of the seat sections ([Seat:*], or the older [SeatDefaults]) of one LightDM
 * config file; undefined when the file does not set it.
 */
export function parseLightdmAllowGuest(text: string): boolean | undefined {
  let inSeat = false;
  let value: boolean | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) {
      inSeat = /^\[(Seat:\*|SeatDefaults)\]$/.test(line);
      continue;
    }
    if (!inSeat || line.startsWith('#')) continue;
    const m = /^allow-guest\s*=\s*(\S+)/.exec(line);
    if (m?.[1] !== undefined) value = m[1].toLowerCase() === 'true';
  }
  return value;
}

const NO_LOGIN_SHELLS = /(?:\/nologin|\/false|^)$/;

/** Users that are guest accounts by name ("guest", or LightDM's transient "guest-XXXXXX") and can log in. */
export function findGuestUsers(passwd: string): string[] {
  const users: string[] = [];
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    const [name, shell] = [f[0] ?? '', f[6] ?? ''];
    if (/^guest(?:-[a-z0-9]{6})?$/i.test(name) && !NO_LOGIN_SHELLS.test(shell.trim())) users.push(name);
  }
  return users;
}

export interface GuestSignals {
  lightdmInstalled: boolean;
  /** Last value set in LightDM's config files, in the order LightDM reads them; undefined if none sets it. */
  lightdmAllowGuest: boolean | undefined;
  lightdmConfigSource: string | null;
  /** LightDM's guest-account script: without it LightDM cannot create a guest session. */
  guestScript: boolean;
  guestUsers: string[];
}

/**
 * LightDM's built-in default for allow-guest is true, but the guest session only works when the
 * guest-account script exists (Ubuntu shipped it; Debian does not). So: explicit `allow-guest=true` fails
 * (stated intent); the default fails only when the script is present. GDM and SDDM have no guest session,
 * so the only other way in is a real account named guest with a login shell.
 */
export function judgeGuest(s: GuestSignals): Observation {
  const lightdmGuest =
    s.lightdmInstalled && (s.lightdmAllowGuest === true || (s.lightdmAllowGuest === undefined && s.guestScript));
  const evidence = {
    lightdmInstalled: s.lightdmInstalled,
    lightdmAllowGuest: s.lightdmAllowGuest ?? null,
    lightdmConfigSource: s.lightdmConfigSource,
    guestAccountScript: s.guestScript,
    guestUsers: s.guestUsers,
  };
  const problems: string[] = [];
  if (lightdmGuest) problems.push('LightDM offers a guest session');
  if (s.guestUsers.length > 0) problems.push(`guest account(s) with a login shell: ${s.guestUsers.join(', ')}`);
  return problems.length > 0
    ? { status: 'fail', evidence, reason: problems.join('; ') }
    : { status: 'pass', evidence, reason: 'no guest session or guest account' };
}

async function confFiles(ctx: Pick<CollectContext, 'readdir'>, dir: string): Promise<string[]> {
  try {
    return (await ctx.readdir(dir))
      .filter((n) => n.endsWith('.conf'))
      .sort()
      .map((n) => `${dir}/${n}`);
  } catch {
    return [];
  }
}

async function exists(ctx: Pick<CollectContext, 'readFile'>, path: string): Promise<boolean> {
  try {
    await ctx.readFile(path);
    return true;
  } catch {
    return false;
  }
}

export const guestAccount: PlatformCheck = {
  collect: async (ctx) => {
    const passwd = await ctx.readFile('/etc/passwd');
    const lightdmInstalled = (await ctx.readdir('/etc/lightdm').catch(() => null)) !== null;
    let allow: boolean | undefined;
    let source: string | null = null;
    if (lightdmInstalled) {
      // LightDM's own order: packaged drop-ins, admin drop-ins, then lightdm.conf; the last setting wins.
      const files = [
        ...(await confFiles(ctx, '/usr/share/lightdm/lightdm.conf.d')),
        ...(await confFiles(ctx, '/etc/lightdm/lightdm.conf.d')),
        '/etc/lightdm/lightdm.conf',
      ];
      for (const file of files) {
        const v = parseLightdmAllowGuest(await ctx.readFile(file).catch(() => ''));
        if (v !== undefined) [allow, source] = [v, file];
      }
    }
    const guestScript = lightdmInstalled && ((await exists(ctx, '/usr/sbin/guest-account')) || (await exists(ctx, '/usr/bin/guest-account')));
    return judgeGuest({
      lightdmInstalled,
      lightdmAllowGuest: allow,
      lightdmConfigSource: source,
      guestScript,
      guestUsers: findGuestUsers(passwd),
    });
  },
  remediation: {
    guides: [
      {
        label: 'Any distribution',
        steps: [
          'Open a terminal and run `echo -e "[Seat:*]\\nallow-guest=false" | sudo tee /etc/lightdm/lightdm.conf.d/50-no-guest.conf` to switch off the LightDM guest session.',
          'If a user called "guest" exists, remove it with `sudo userdel -r guest` (or ask IT).',
          'Restart the device, then choose "Check again" in Vigil.',
        ],
        needsAdmin: true,
      },
    ],
  },
};
