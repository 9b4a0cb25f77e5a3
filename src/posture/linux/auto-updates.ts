import type { CollectContext, PlatformCheck } from '../collector.js';
import type { Observation } from '../types.js';
import { fileStamp, stampVersion } from './file-stamp.js';
import { distroFamily, readOsRelease } from './os-release.js';

const DPKG_STATUS = '/var/lib/dpkg/status';

const GNOME_SOFTWARE_NOTE = "GNOME Software's automatic updates only download by default; they are not counted";

/** `APT::Periodic::<Key> "<value>";` settings of one apt.conf file (flat syntax; the nested form is rare). */
export function parseAptPeriodic(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const noComments = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*(?:\/\/|#).*$/gm, '');
  for (const m of noComments.matchAll(/APT::Periodic::([\w-]+)\s+"([^"]*)"\s*;/g)) {
    if (m[1] !== undefined && m[2] !== undefined) out.set(m[1], m[2]);
  }
  return out;
}

/** Whether dpkg's status file records `pkg` as installed ("Status: install ok installed"). */
export function dpkgInstalled(status: string, pkg: string): boolean {
  const at = status.indexOf(`Package: ${pkg}\n`);
  if (at < 0 || (at > 0 && status[at - 1] !== '\n')) return false;
  const end = status.indexOf('\n\n', at);
  const stanza = status.slice(at, end < 0 ? undefined : end);
  return /^Status: \S+ ok installed$/m.test(stanza);
}

/** `apply_updates` of the [commands] section of dnf-automatic's automatic.conf (default: no). */
export function parseDnfAutomaticApply(text: string): boolean {
  let section = '';
  let apply = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec?.[1] !== undefined) {
      section = sec[1];
      continue;
    }
    const m = /^apply_updates\s*=\s*(\S+)/.exec(line);
    if (section === 'commands' && m?.[1] !== undefined) apply = ['yes', 'true', '1', 'on'].includes(m[1].toLowerCase());
  }
  return apply;
}

export interface AptAutoSignals {
  unattendedUpgrade: string | null;
  periodicEnable: string | null;
  packageInstalled: boolean;
  /** From /etc/systemd/system links: enabled, masked, or null when neither link exists. */
  timer: string | null;
}

/** unattended-upgrades runs from apt-daily-upgrade.timer when APT::Periodic::Unattended-Upgrade is non-zero. */
export function judgeAptAuto(s: AptAutoSignals): Observation {
  const evidence = {
    mechanism: 'unattended-upgrades',
    packageInstalled: s.packageInstalled,
    unattendedUpgrade: s.unattendedUpgrade,
    periodicEnable: s.periodicEnable,
    timer: s.timer,
    note: GNOME_SOFTWARE_NOTE,
  };
  if (!s.packageInstalled) return { status: 'fail', evidence, reason: 'unattended-upgrades is not installed' };
  if (s.periodicEnable === '0') return { status: 'fail', evidence, reason: 'APT::Periodic::Enable is "0"' };
  if (s.unattendedUpgrade === null || s.unattendedUpgrade === '0') {
    return { status: 'fail', evidence, reason: 'APT::Periodic::Unattended-Upgrade is not switched on' };
  }
  if (s.timer === 'masked') {
    return { status: 'fail', evidence, reason: `apt-daily-upgrade.timer is ${s.timer}` };
  }
  return { status: 'pass', evidence, reason: 'unattended-upgrades installs updates automatically' };
}

export interface DnfAutoSignals {
  applyUpdates: boolean;
  configFound: boolean;
  /** State per timer unit from /etc/systemd/system links; null when not enabled. */
  timers: Record<string, string | null>;
}

const ENABLED = new Set(['enabled', 'enabled-runtime', 'static', 'alias', 'indirect']);

/** dnf-automatic-install.timer installs regardless of the config; dnf-automatic.timer only when apply_updates. */
export function judgeDnfAuto(s: DnfAutoSignals): Observation {
  const on = (u: string): boolean => ENABLED.has(s.timers[u] ?? '');
  const evidence = { mechanism: 'dnf-automatic', applyUpdates: s.applyUpdates, configFound: s.configFound, timers: s.timers, note: GNOME_SOFTWARE_NOTE };
  if (on('dnf-automatic-install.timer')) return { status: 'pass', evidence, reason: 'dnf-automatic-install.timer installs updates' };
  if ((on('dnf-automatic.timer') || on('dnf5-automatic.timer')) && s.applyUpdates) {
    return { status: 'pass', evidence, reason: 'dnf-automatic installs updates (apply_updates = yes)' };
  }
  if (on('dnf-automatic.timer') || on('dnf5-automatic.timer')) {
    return { status: 'fail', evidence, reason: 'dnf-automatic runs but only downloads (apply_updates is not yes)' };
  }
  return { status: 'fail', evidence, reason: 'no dnf-automatic timer is enabled' };
}

/**
 * A timer's state from the links `systemctl enable`/`mask` leave in /etc/systemd/system, read as files rather
 * than by spawning systemctl: cheaper, and it works without a running systemd (containers, chroots).
 */
async function timerState(ctx: Pick<CollectContext, 'readFile'>, unit: string): Promise<string | null> {
  const [masked, wanted] = await Promise.all([
    ctx.readFile(`/etc/systemd/system/${unit}`).then((t) => t === '', () => false),
    ctx.readFile(`/etc/systemd/system/timers.target.wants/${unit}`).then(() => true, () => false),
  ]);
  if (masked) return 'masked';
  return wanted ? 'enabled' : null;
}

/**
 * dpkg's status file is ~1 MB; it is read again only when its stamp changes, which every dpkg run that
 * touches a package causes (dpkg writes it anew and renames it into place). Persisted, so a restart does not
 * read it either.
 */
export async function unattendedInstalled(ctx: Pick<CollectContext, 'facts' | 'readFile'>, statusFile = DPKG_STATUS): Promise<boolean> {
  const status = await fileStamp(ctx, statusFile);
  return ctx.facts.persistent('linux.dpkg-unattended', stampVersion(status), async () =>
    dpkgInstalled(await ctx.readFile(statusFile), 'unattended-upgrades'),
  );
}

async function collectApt(ctx: CollectContext): Promise<Observation> {
  const files = (await ctx.readdir('/etc/apt/apt.conf.d').catch(() => [])).sort();
  const [texts, packageInstalled, timer] = await Promise.all([
    Promise.all(files.map((f) => ctx.readFile(`/etc/apt/apt.conf.d/${f}`).catch(() => ''))),
    unattendedInstalled(ctx),
    timerState(ctx, 'apt-daily-upgrade.timer'),
  ]);
  const periodic = new Map<string, string>();
  // apt reads apt.conf.d in lexical order and a later file overrides an earlier one.
  for (const text of texts) for (const [k, v] of parseAptPeriodic(text)) periodic.set(k, v);
  return judgeAptAuto({
    unattendedUpgrade: periodic.get('Unattended-Upgrade') ?? null,
    periodicEnable: periodic.get('Enable') ?? null,
    packageInstalled,
    timer,
  });
}

async function collectDnf(ctx: CollectContext): Promise<Observation> {
  const conf = await ctx.readFile('/etc/dnf/automatic.conf').catch(() => null);
  const units = ['dnf-automatic-install.timer', 'dnf-automatic.timer', 'dnf5-automatic.timer'];
  const states = await Promise.all(units.map((u) => timerState(ctx, u)));
  return judgeDnfAuto({
    applyUpdates: conf !== null && parseDnfAutomaticApply(conf),
    configFound: conf !== null,
    timers: Object.fromEntries(units.map((u, i) => [u, states[i] ?? null])),
  });
}

export const autoUpdates: PlatformCheck = {
  collect: async (ctx) => {
    const family = distroFamily(await readOsRelease(ctx));
    if (family === 'debian') return collectApt(ctx);
    if (family === 'fedora') return collectDnf(ctx);
    return {
      status: 'unknown',
      evidence: { distroFamily: family ?? null, note: GNOME_SOFTWARE_NOTE },
      reason: 'no supported automatic-update mechanism for this distribution',
    };
  },
  remediation: {
    guides: [
      {
        label: 'Ubuntu / Debian',
        when: { distroFamily: 'debian' },
        steps: [
          'Open a terminal and run `sudo apt install unattended-upgrades && sudo dpkg-reconfigure -plow unattended-upgrades`, then choose "Yes".',
          'On Ubuntu you can instead open Software & Updates, Updates tab, and set "When there are security updates" to "Download and install automatically".',
          'Choose "Check again" in Vigil.',
        ],
        needsAdmin: true,
      },
      {
        label: 'Fedora / RHEL',
        when: { distroFamily: 'fedora' },
        steps: [
          'Open a terminal and run `sudo dnf install dnf-automatic && sudo systemctl enable --now dnf-automatic-install.timer`.',
          'Note: automatic updates in GNOME Software only download updates; they do not count.',
          'Choose "Check again" in Vigil.',
        ],
        needsAdmin: true,
      },
      {
        label: 'Other distributions',
        steps: ['Ask IT to set up automatic security updates for this device.', 'Choose "Check again" in Vigil.'],
        needsAdmin: true,
      },
    ],
  },
};
