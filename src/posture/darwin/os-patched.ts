import type { PlatformCheck } from '../collector.js';
import type { Evidence, JsonValue, Observation } from '../types.js';
import { VENTURA } from './guides.js';
import { plistDict } from './plist.js';
import { readDarwinPosture, readDarwinUpdates, type DarwinUpdates } from './probe.js';
import { parseSoftwareUpdateList } from './text.js';

/** How long a scan waits for `softwareupdate --list`; it keeps running in the background and is cached. */
const LIST_WAIT_MS = 3000;

interface PlistUpdates {
  lastSuccessfulCheck: string | null;
  /** "Display Name Display Version" of each listed update. */
  pending: string[];
  /** LastRecommendedUpdatesAvailable: macOS sometimes counts updates without listing them. */
  recommendedCount: number;
}

/**
 * macOS's own background check records its result in /Library/Preferences/com.apple.SoftwareUpdate.plist
 * (LastSuccessfulDate, RecommendedUpdates), which is free to read; `softwareupdate --list` is the fresh answer.
 * An entry without a Display Name is left unnamed (counted, not listed): its Identifier cannot be judged as
 * OS or app by the rules of isMacosUpdate.
 */
export function plistUpdates(xml: string | null): PlistUpdates | undefined {
  const d = plistDict(xml);
  if (!d) return undefined;
  const last = d.LastSuccessfulDate;
  const recs = Array.isArray(d.RecommendedUpdates) ? d.RecommendedUpdates : [];
  const pending = recs.flatMap((r: JsonValue) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return [];
    const name = r['Display Name'];
    const version = r['Display Version'];
    return typeof name === 'string' ? [`${name}${typeof version === 'string' ? ` ${version}` : ''}`] : [];
  });
  const count = d.LastRecommendedUpdatesAvailable;
  return {
    lastSuccessfulCheck: typeof last === 'string' ? last : null,
    pending,
    recommendedCount: Math.max(recs.length, typeof count === 'number' ? count : 0),
  };
}

/** "macOS Sonoma 14.0" offered to a Mac on 13.x is an upgrade, judged by os-version, not a missing patch. */
export function isMajorUpgrade(title: string, productVersion: string | null): boolean {
  const offered = /^macOS\b.*?\b(\d+)(?:\.\d+)*\s*$/.exec(title.trim())?.[1];
  const current = productVersion?.split('.')[0];
  return offered !== undefined && current !== undefined && offered !== current;
}

/**
 * Updates of macOS itself, by the names Apple gives them: minor and security releases ("macOS Sonoma 14.7.2",
 * "macOS Security Response 13.2 (a)"), Rapid Security Responses and their successor Background Security
 * Improvements, and the "Security Update 2021-005" releases for older majors. Everything else Software Update
 * offers (Safari, Command Line Tools, printer drivers, config data) is not the OS's patch level: Kolide and
 * Fleet judge macOS patching the same way, and counting a pending Command Line Tools update failed developers'
 * Macs whose OS was current.
 */
const MACOS_UPDATE = [/^macOS\s/, /Security Response|Background Security Improvement/i, /^Security Update \d{4}-\d{3}\b/];

export function isMacosUpdate(...names: string[]): boolean {
  return names.some((n) => MACOS_UPDATE.some((re) => re.test(n.trim())));
}

interface Offered {
  /** Title first; the label is a second chance to recognise an OS update. */
  names: [string, ...string[]];
  /** Recommended or needing a restart: Apple marks every macOS and security update so. */
  counts: boolean;
}

interface SortedUpdates {
  pending: string[];
  majorUpgrades: string[];
  otherUpdates: string[];
}

function sortOffered(offered: Offered[], productVersion: string | null): SortedUpdates {
  const sorted: SortedUpdates = { pending: [], majorUpgrades: [], otherUpdates: [] };
  for (const { names, counts } of offered) {
    const [title] = names;
    if (!isMacosUpdate(...names) || !counts) sorted.otherUpdates.push(title);
    else if (isMajorUpgrade(title, productVersion)) sorted.majorUpgrades.push(title);
    else sorted.pending.push(title);
  }
  return sorted;
}

/** The sorted names become the evidence; a pending macOS update decides the check. */
function failOnPending(sorted: SortedUpdates, evidence: Evidence): Observation | undefined {
  Object.assign(evidence, sorted);
  return sorted.pending.length > 0
    ? { status: 'fail', evidence, reason: `macOS updates are waiting to be installed: ${sorted.pending.join(', ')}` }
    : undefined;
}

function notCounted(sorted: SortedUpdates): string {
  const rest = [...sorted.otherUpdates, ...sorted.majorUpgrades];
  return rest.length > 0 ? ` (not counted: ${rest.join(', ')})` : '';
}

/**
 * A pending update of macOS itself is a fail; other updates and major upgrades are evidence only.
 * Apple publishes no release date per update, so the policy's patch age is applied to the last successful
 * check instead: a Mac that has not reached Apple's catalog for longer than that is unknown, not up to date.
 */
export function judgeDarwinPatches(
  list: DarwinUpdates | undefined,
  softwareUpdatePlist: string | null,
  productVersion: string | null,
  now: Date,
  maxPatchAgeDays: number,
): Observation {
  const fromPlist = plistUpdates(softwareUpdatePlist);
  const evidence: Evidence = {
    lastSuccessfulCheck: fromPlist?.lastSuccessfulCheck ?? null,
    source: list ? 'softwareupdate --list' : 'com.apple.SoftwareUpdate',
  };
  if (list && list.stdout !== null) {
    const parsed = parseSoftwareUpdateList(list.stdout, list.stderr ?? '');
    if (parsed.state === 'none') {
      return { status: 'pass', evidence: { ...evidence, pending: [], majorUpgrades: [], otherUpdates: [] }, reason: 'no updates are pending' };
    }
    if (parsed.state === 'pending') {
      const sorted = sortOffered(
        parsed.updates.map((u) => ({ names: [u.title, u.label], counts: u.recommended || u.restart })),
        productVersion,
      );
      return failOnPending(sorted, evidence) ?? { status: 'pass', evidence, reason: `no macOS update is pending${notCounted(sorted)}` };
    }
  }
  if (!fromPlist) return { status: 'unknown', evidence, reason: 'could not read the software update status' };
  evidence.source = 'com.apple.SoftwareUpdate';
  evidence.recommendedCount = fromPlist.recommendedCount;
  const sorted = sortOffered(fromPlist.pending.map((name) => ({ names: [name], counts: true })), productVersion);
  const failed = failOnPending(sorted, evidence);
  if (failed) return failed;
  // The count also covers Safari, Command Line Tools and major upgrades, so unnamed updates prove nothing either way.
  const unnamed = fromPlist.recommendedCount - fromPlist.pending.length;
  if (unnamed > 0) {
    return {
      status: 'unknown',
      evidence,
      reason: `macOS counts ${unnamed} recommended update(s) without naming them, so they cannot be told apart from app updates`,
    };
  }
  const last = fromPlist.lastSuccessfulCheck === null ? Number.NaN : Date.parse(fromPlist.lastSuccessfulCheck);
  if (Number.isNaN(last)) return { status: 'unknown', evidence, reason: 'macOS has no record of a successful update check' };
  const ageDays = Math.floor((now.getTime() - last) / 86_400_000);
  evidence.lastCheckAgeDays = ageDays;
  return ageDays > maxPatchAgeDays
    ? { status: 'unknown', evidence, reason: `the last successful update check was ${ageDays} days ago (offline?)` }
    : { status: 'pass', evidence, reason: `no macOS update was pending at the last check${notCounted(sorted)}` };
}

export const osPatched: PlatformCheck = {
  collect: async (ctx) => {
    const posture = await readDarwinPosture(ctx);
    const pendingList = readDarwinUpdates(ctx);
    // The list may take a minute; a scan does not wait for it, but the probe goes on and fills the cache.
    pendingList.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const list = await Promise.race([
      pendingList.catch(() => undefined),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => { resolve(undefined); }, LIST_WAIT_MS))),
    ]);
    clearTimeout(timer);
    return judgeDarwinPatches(list, posture.softwareUpdate, posture.productVersion, ctx.now(), ctx.thresholds.maxPatchAgeDays);
  },
  remediation: {
    guides: [
      {
        label: 'macOS 13 Ventura and later',
        when: VENTURA,
        steps: [
          'Save your work and connect your Mac to power.',
          'Open Apple menu > System Settings > General > Software Update.',
          'Click "Update Now" (or "Restart Now") and follow the prompts.',
          'After the restart, choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-software-update',
        needsAdmin: true,
      },
      {
        label: 'macOS 12 and earlier',
        steps: [
          'Save your work and connect your Mac to power.',
          'Open Apple menu > System Preferences > Software Update.',
          'Click "Update Now" (or "Restart Now") and follow the prompts.',
          'After the restart, choose "Check again" in Vigil.',
        ],
        deepLink: 'macos-software-update-legacy',
        needsAdmin: true,
      },
    ],
  },
};
