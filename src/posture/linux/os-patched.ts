import { readFile as readRaw, readdir } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import type { CollectContext, PlatformCheck } from '../collector.js';
import { CommandNotFoundError } from '../exec.js';
import type { Observation } from '../types.js';
import { fileStamp, stampVersion } from './file-stamp.js';
import { distroFamily, readOsRelease } from './os-release.js';

const DAY_MS = 86_400_000;

export interface PendingUpdates {
  total: number;
  security: number;
  securityPackages: string[];
}

const APT_INST = /^Inst (\S+)(?: \[[^\]]*\])? \((\S+) ([^[]*)\[/;

/**
 * Counts `Inst` lines of `apt-get -s upgrade|dist-upgrade`; a package is a security update when one of its
 * candidate's origins ("Label:Version/Archive") is a -security archive, e.g. "Ubuntu:22.04/jammy-security"
 * or "Debian-Security:12/oldstable-security".
 */
export function parseAptSimulation(text: string): PendingUpdates {
  let total = 0;
  const securityPackages: string[] = [];
  for (const line of text.split('\n')) {
    const m = APT_INST.exec(line);
    if (!m?.[1] || m[3] === undefined) continue;
    total++;
    const archives = m[3].split(',').map((o) => o.trim().slice(o.trim().indexOf('/') + 1));
    if (archives.some((a) => a.includes('-security'))) securityPackages.push(m[1]);
  }
  return { total, security: securityPackages.length, securityPackages };
}

/**
 * Security advisories of `dnf updateinfo list --security`. dnf4 prints "ID Severity/Sec. NEVRA"; dnf5 prints a
 * table "Name Type Severity Package Issued" whose Type is "security". Counted per package (NEVRA), since one
 * package can carry several advisories.
 */
export function parseDnfSecurity(text: string): PendingUpdates {
  const pkgs = new Set<string>();
  for (const line of text.split('\n')) {
    const dnf4 = /^\s*\S+\s+\S*\/Sec\.\s+(\S+)/.exec(line);
    const dnf5 = /^\s*\S+\s+security\s+\S+\s+(\S+)/.exec(line);
    const pkg = dnf4?.[1] ?? dnf5?.[1];
    if (pkg) pkgs.add(pkg);
  }
  const securityPackages = [...pkgs];
  return { total: securityPackages.length, security: securityPackages.length, securityPackages };
}

/** Rows of `zypper list-patches --category security` whose Status column says the patch is still needed. */
export function parseZypperPatches(text: string): PendingUpdates {
  const patches: string[] = [];
  let statusCol = -1;
  let nameCol = -1;
  for (const line of text.split('\n')) {
    const cols = line.split('|').map((c) => c.trim());
    if (cols.length < 3) continue;
    if (statusCol < 0) {
      statusCol = cols.findIndex((c) => c.toLowerCase() === 'status');
      nameCol = cols.findIndex((c) => c.toLowerCase() === 'name');
      continue;
    }
    const status = (cols[statusCol] ?? '').toLowerCase();
    if (status === 'needed' || status === 'applicable') patches.push(cols[nameCol] ?? '');
  }
  return { total: patches.length, security: patches.length, securityPackages: patches };
}

export interface AptRun {
  start: Date;
  end: Date | null;
  commandline: string | null;
  upgraded: number;
}

/** "2025-06-24  14:36:25" in local time, as apt writes it. */
function aptDate(s: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})\s+(\d{2}):(\d{2}):(\d{2})$/.exec(s.trim());
  if (!m) return null;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return new Date(y, mo - 1, d, h, mi, se);
}

/** Runs recorded in /var/log/apt/history.log: blank-line-separated "Key: value" stanzas. */
export function parseAptHistory(text: string): AptRun[] {
  const runs: AptRun[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const i = line.indexOf(': ');
      if (i > 0) fields.set(line.slice(0, i), line.slice(i + 2));
    }
    const start = aptDate(fields.get('Start-Date') ?? '');
    if (!start) continue;
    const upgrade = fields.get('Upgrade');
    runs.push({
      start,
      end: aptDate(fields.get('End-Date') ?? ''),
      commandline: fields.get('Commandline') ?? null,
      upgraded: upgrade ? upgrade.split('), ').length : 0,
    });
  }
  return runs;
}

/**
 * A run that patched the system: it upgraded packages and was an upgrade command (apt/apt-get upgrade,
 * dist-upgrade, full-upgrade, unattended-upgrade) or a GUI updater (PackageKit/aptdaemon, which log no or
 * their own command line). `apt install foo` upgrading a dependency or two is not a patch run, and it had no
 * End-Date if it crashed.
 */
export function isPatchRun(run: AptRun): boolean {
  if (run.upgraded === 0 || run.end === null) return false;
  if (run.commandline === null) return true;
  const words = run.commandline.trim().split(/\s+/);
  const program = (words[0] ?? '').slice((words[0] ?? '').lastIndexOf('/') + 1);
  if (program === 'unattended-upgrade' || program === 'packagekit' || program === 'aptdaemon') return true;
  // The subcommand is the first word that is not an option or an option's value ("-o Key=Value").
  const sub = words.slice(1).find((w, i, a) => !w.startsWith('-') && !(i > 0 && ['-o', '-c', '-t'].includes(a[i - 1] ?? '')));
  return sub === 'upgrade' || sub === 'dist-upgrade' || sub === 'full-upgrade';
}

export interface UpgradeHistory {
  lastUpgrade: Date | null;
  /** Start of the oldest run the logs still hold: "no upgrade since then" is known, before it is not. */
  coveredSince: Date | null;
}

export function lastPatchRun(runs: readonly AptRun[]): UpgradeHistory {
  let lastUpgrade: Date | null = null;
  let coveredSince: Date | null = null;
  for (const r of runs) {
    if (coveredSince === null || r.start < coveredSince) coveredSince = r.start;
    if (isPatchRun(r) && r.end && (lastUpgrade === null || r.end > lastUpgrade)) lastUpgrade = r.end;
  }
  return { lastUpgrade, coveredSince };
}

export interface PatchState {
  manager: 'apt' | 'dnf' | 'zypper';
  pending: PendingUpdates | null;
  /** Why pending is null. */
  pendingError?: string;
  /** Total pending updates of any kind, where the probe gives it. */
  pendingTotal: number | null;
  history: UpgradeHistory;
  /** What lastUpgrade means for this manager (apt: an upgrade run; dnf/zypper: any package transaction). */
  lastUpgradeSource: string;
  /** Age of the package metadata the pending counts come from; null when unknown. */
  listsAgeDays: number | null;
}

/**
 * The judgement, and why:
 * - No pending security updates and package lists no older than maxPatchAgeDays: pass. Stale lists cannot
 *   show updates published since they were fetched, so "none pending" from them is unknown, not a pass.
 * - Pending security updates but a patch run within maxPatchAgeDays: pass (grace window). Updates published
 *   after a recent upgrade get the same number of days to be installed; the last run stands in for their
 *   publication dates, which the package managers do not show offline.
 * - Pending security updates and the last patch run older than maxPatchAgeDays (or none in logs that cover
 *   longer than that): fail.
 * - Anything we cannot establish: unknown with the reason. Never a guess.
 */
export function judgePatchState(s: PatchState, maxPatchAgeDays: number, now: Date): Observation {
  const evidence = {
    manager: s.manager,
    pendingSecurity: s.pending?.security ?? null,
    pendingTotal: s.pendingTotal,
    securityPackages: (s.pending?.securityPackages ?? []).slice(0, 20),
    lastUpgrade: s.history.lastUpgrade?.toISOString() ?? null,
    lastUpgradeSource: s.lastUpgradeSource,
    listsAgeDays: s.listsAgeDays === null ? null : Math.round(s.listsAgeDays * 10) / 10,
    maxPatchAgeDays,
  };
  if (s.pending === null) {
    return { status: 'unknown', evidence, reason: s.pendingError ?? 'could not list pending updates' };
  }
  const cutoff = now.getTime() - maxPatchAgeDays * DAY_MS;
  const { lastUpgrade, coveredSince } = s.history;
  const upgradedRecently: boolean | null =
    lastUpgrade !== null && lastUpgrade.getTime() >= cutoff
      ? true
      : coveredSince !== null && coveredSince.getTime() <= cutoff
        ? false
        : null;
  if (s.pending.security === 0) {
    if (s.listsAgeDays !== null && s.listsAgeDays <= maxPatchAgeDays) {
      return { status: 'pass', evidence, reason: 'no security updates pending' };
    }
    return {
      status: 'unknown',
      evidence,
      reason:
        s.listsAgeDays === null
          ? 'no security updates pending, but the age of the package lists is unknown'
          : `no security updates pending, but the package lists are ${Math.floor(s.listsAgeDays)} days old`,
    };
  }
  const n = `${s.pending.security} security update${s.pending.security === 1 ? '' : 's'} pending`;
  if (upgradedRecently === true) {
    return { status: 'pass', evidence, reason: `${n}; last upgraded within ${maxPatchAgeDays} days` };
  }
  if (upgradedRecently === false) {
    return {
      status: 'fail',
      evidence,
      reason: lastUpgrade
        ? `${n}; last upgraded ${Math.floor((now.getTime() - lastUpgrade.getTime()) / DAY_MS)} days ago`
        : `${n}; no upgrade in the package logs, which go back more than ${maxPatchAgeDays} days`,
    };
  }
  return { status: 'unknown', evidence, reason: `${n}; when the system was last upgraded is unknown` };
}

async function mtimeMs(ctx: Pick<CollectContext, 'facts'>, path: string): Promise<number | null> {
  return (await fileStamp(ctx, path))?.mtimeMs ?? null;
}

function ageDays(mtimes: readonly (number | null)[], now: Date): number | null {
  const known = mtimes.filter((m): m is number => m !== null);
  return known.length === 0 ? null : Math.max(0, (now.getTime() - Math.max(...known)) / DAY_MS);
}

/** apt's log of package runs, and the previous month's, which logrotate compresses. */
export const APT_HISTORY_LOGS = { current: '/var/log/apt/history.log', rotated: '/var/log/apt/history.log.1.gz' };

async function readAptHistory(ctx: Pick<CollectContext, 'readFile'>, logs: typeof APT_HISTORY_LOGS): Promise<UpgradeHistory> {
  const current = parseAptHistory(await ctx.readFile(logs.current).catch(() => ''));
  const h = lastPatchRun(current);
  if (h.lastUpgrade !== null) return h;
  // logrotate compresses the previous month at once (no delaycompress); ctx.readFile is text-only, so
  // this one binary read goes to fs directly.
  try {
    const older = parseAptHistory(gunzipSync(await readRaw(logs.rotated)).toString('utf8'));
    return lastPatchRun([...older, ...current]);
  } catch {
    return h;
  }
}

/**
 * The parsed logs are reused while neither file's stamp changes: apt appends to history.log (size and mtime
 * change) and logrotate replaces both by rename (inode changes), so an equal pair of stamps means equal runs.
 */
export async function aptHistory(ctx: Pick<CollectContext, 'facts' | 'readFile'>, logs = APT_HISTORY_LOGS): Promise<UpgradeHistory> {
  const [current, rotated] = await Promise.all([fileStamp(ctx, logs.current), fileStamp(ctx, logs.rotated)]);
  return ctx.facts.versioned('linux.apt-history', `${stampVersion(current)}|${stampVersion(rotated)}`, () => readAptHistory(ctx, logs));
}

/**
 * apt takes seconds (4 s on a 2-core CI box: it rebuilds its cache in memory when it cannot write
 * pkgcache.bin), so the simulation result is a persistent fact versioned by the mtimes of dpkg's status file
 * and the package lists: the answer cannot change unless one of them does, across restarts too.
 */
async function aptPending(ctx: Pick<CollectContext, 'facts' | 'run'>, statusMtime: number | null, listsMtime: number | null) {
  return ctx.facts.persistent('linux.apt-sim', `${statusMtime}:${listsMtime}`, async () => {
    const res = await ctx.run('apt-get', ['-s', '-o', 'Debug::NoLocking=1', 'dist-upgrade'], { timeoutMs: 60_000 });
    if (res.code !== 0) throw new Error(`apt-get -s dist-upgrade exited ${res.code}: ${res.stderr.trim().split('\n')[0] ?? ''}`);
    return parseAptSimulation(res.stdout);
  });
}

async function collectApt(ctx: CollectContext): Promise<PatchState> {
  const [history, statusMtime, ...listMtimes] = await Promise.all([
    aptHistory(ctx),
    mtimeMs(ctx, '/var/lib/dpkg/status'),
    mtimeMs(ctx, '/var/lib/apt/lists'),
    mtimeMs(ctx, '/var/lib/apt/lists/partial'),
    mtimeMs(ctx, '/var/lib/apt/periodic/update-success-stamp'),
  ]);
  const listsMtime = listMtimes.reduce<number | null>((a, b) => (b !== null && (a === null || b > a) ? b : a), null);
  const base = {
    manager: 'apt' as const,
    history,
    lastUpgradeSource: 'last upgrade run in /var/log/apt/history.log',
    listsAgeDays: ageDays(listMtimes, ctx.now()),
  };
  try {
    const pending = await aptPending(ctx, statusMtime, listsMtime);
    return { ...base, pending, pendingTotal: pending.total };
  } catch (err) {
    return { ...base, pending: null, pendingTotal: null, pendingError: err instanceof Error ? err.message : String(err) };
  }
}

async function repodataMtimes(ctx: Pick<CollectContext, 'facts'>, dir: string): Promise<(number | null)[]> {
  const repos = await readdir(dir).catch(() => []);
  return Promise.all(repos.map((r) => mtimeMs(ctx, `${dir}/${r}/repodata/repomd.xml`)));
}

async function collectDnf(ctx: CollectContext): Promise<PatchState> {
  const [dnf4, dnf5, hist4, hist5] = await Promise.all([
    repodataMtimes(ctx, '/var/cache/dnf'),
    repodataMtimes(ctx, '/var/cache/libdnf5'),
    mtimeMs(ctx, '/var/lib/dnf/history.sqlite'),
    mtimeMs(ctx, '/usr/lib/sysimage/libdnf5/transaction_history.sqlite'),
  ]);
  const last = Math.max(hist4 ?? 0, hist5 ?? 0);
  const base = {
    manager: 'dnf' as const,
    // The history database changes on every transaction; reading its rows would need the sqlite module or a
    // slow `dnf history`, so its mtime stands in, and says so.
    history: { lastUpgrade: last > 0 ? new Date(last) : null, coveredSince: null },
    lastUpgradeSource: 'last dnf transaction of any kind (history database mtime)',
    listsAgeDays: ageDays([...dnf4, ...dnf5], ctx.now()),
    pendingTotal: null,
  };
  // -C: cache only, so no network and no root needed to refresh; fails cleanly when there is no cache.
  const res = await ctx.run('dnf', ['-C', '-q', 'updateinfo', 'list', '--security'], { timeoutMs: 30_000 });
  if (res.code !== 0) {
    return { ...base, pending: null, pendingError: `dnf updateinfo exited ${res.code}: ${res.stderr.trim().split('\n')[0] ?? ''}` };
  }
  return { ...base, pending: parseDnfSecurity(res.stdout) };
}

async function collectZypper(ctx: CollectContext): Promise<PatchState> {
  const [solv, rpmdb] = await Promise.all([mtimeMs(ctx, '/var/cache/zypp/solv'), mtimeMs(ctx, '/usr/lib/sysimage/rpm')]);
  const base = {
    manager: 'zypper' as const,
    // /var/log/zypp/history is root-only; the rpm database's mtime is the last package transaction.
    history: { lastUpgrade: rpmdb === null ? null : new Date(rpmdb), coveredSince: null },
    lastUpgradeSource: 'last rpm transaction of any kind (rpm database mtime)',
    listsAgeDays: ageDays([solv], ctx.now()),
    pendingTotal: null,
  };
  const res = await ctx.run('zypper', ['--non-interactive', '--no-refresh', 'list-patches', '--category', 'security'], {
    timeoutMs: 30_000,
  });
  // zypper exits 100/101 when patches are needed; anything else non-zero is a failure (often: not root).
  if (res.code !== 0 && res.code !== 100 && res.code !== 101) {
    return { ...base, pending: null, pendingError: `requires-admin: zypper list-patches exited ${res.code}` };
  }
  return { ...base, pending: parseZypperPatches(res.stdout) };
}

export const osPatched: PlatformCheck = {
  collect: async (ctx) => {
    const family = distroFamily(await readOsRelease(ctx));
    const collect = family === 'debian' ? collectApt : family === 'fedora' ? collectDnf : family === 'suse' ? collectZypper : null;
    if (collect === null) {
      return { status: 'unknown', evidence: { distroFamily: family ?? null }, reason: 'no supported package manager for this distribution' };
    }
    try {
      return judgePatchState(await collect(ctx), ctx.thresholds.maxPatchAgeDays, ctx.now());
    } catch (err) {
      if (err instanceof CommandNotFoundError) {
        return { status: 'unknown', evidence: { distroFamily: family ?? null }, reason: `${err.command} is not installed` };
      }
      throw err;
    }
  },
  remediation: {
    guides: [
      {
        label: 'Ubuntu / Debian (GNOME)',
        when: { distroFamily: 'debian', desktop: 'gnome' },
        steps: [
          'Open Software Updater (or GNOME Software, Updates tab) and choose "Install Now"; enter your password when asked.',
          'Restart when it asks you to.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'gnome-software-updates',
        needsAdmin: false,
      },
      {
        label: 'Ubuntu / Debian (KDE)',
        when: { distroFamily: 'debian', desktop: 'kde' },
        steps: ['Open Discover, go to Updates and choose "Update All".', 'Restart when it asks you to.', 'Choose "Check again" in Vigil.'],
        deepLink: 'kde-updates',
        needsAdmin: false,
      },
      {
        label: 'Ubuntu / Debian',
        when: { distroFamily: 'debian' },
        steps: [
          'Open a terminal and run `sudo apt update && sudo apt full-upgrade`, then answer "Y".',
          'Restart the device when it finishes.',
          'Choose "Check again" in Vigil.',
        ],
        needsAdmin: true,
      },
      {
        label: 'Fedora / RHEL (GNOME)',
        when: { distroFamily: 'fedora', desktop: 'gnome' },
        steps: [
          'Open Software, go to Updates and choose "Restart & Update".',
          'Let the device restart and install the updates.',
          'Choose "Check again" in Vigil.',
        ],
        deepLink: 'gnome-software-updates',
        needsAdmin: false,
      },
      {
        label: 'Fedora / RHEL (KDE)',
        when: { distroFamily: 'fedora', desktop: 'kde' },
        steps: ['Open Discover, go to Updates and choose "Update All".', 'Restart when it asks you to.', 'Choose "Check again" in Vigil.'],
        deepLink: 'kde-updates',
        needsAdmin: false,
      },
      {
        label: 'Fedora / RHEL',
        when: { distroFamily: 'fedora' },
        steps: ['Open a terminal and run `sudo dnf upgrade --refresh`, then answer "y".', 'Restart the device.', 'Choose "Check again" in Vigil.'],
        needsAdmin: true,
      },
      {
        label: 'openSUSE / SLES',
        when: { distroFamily: 'suse' },
        steps: ['Open a terminal and run `sudo zypper patch`.', 'Restart the device.', 'Choose "Check again" in Vigil.'],
        needsAdmin: true,
      },
      {
        label: 'Other distributions',
        steps: ['Install all available updates with your distribution\'s updater, then restart.', 'Choose "Check again" in Vigil.'],
        needsAdmin: false,
      },
    ],
  },
};
