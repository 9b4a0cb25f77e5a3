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
  pending: string[];
  /** LastRecommendedUpdatesAvailable: macOS sometimes counts updates without listing them. */
  recommendedCount: number;
}

/**
 * macOS's own background check records its result in /Library/Preferences/com.apple.SoftwareUpdate.plist
 * (LastSuccessfulDate, RecommendedUpdates), which is free to read; `softwareupdate --list` is the fresh answer.
 */
export function plistUpdates(xml: string | null): PlistUpdates | undefined {
  const d = plistDict(xml);
  if (!d) return undefined;
  const last = d.LastSuccessfulDate;
  const recs = Array.isArray(d.RecommendedUpdates) ? d.RecommendedUpdates : [];
  const pending = recs.map((r: JsonValue) => {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return '?';
    const name = r['Display Name'] ?? r.Identifier;
    const version = r['Display Version'];
    return `${typeof name === 'string' ? name : '?'}${typeof version === 'string' ? ` ${version}` : ''}`;
  });
  const count = d.LastRecommendedUpdatesAvailable;
  return {
    lastSuccessfulCheck: typeof last === 'string' ? last : null,
    pending,
    recommendedCount: Math.max(pending.length, typeof count === 'number' ? count : 0),
  };
}

/** "macOS Sonoma 14.0" offered to a Mac on 13.x is an upgrade, judged by os-version, not a missing patch. */
export function isMajorUpgrade(title: string, productVersion: string | null): boolean {
  const offered = /^macOS\b.*?\b(\d+)(?:\.\d+)*\s*$/.exec(title.trim())?.[1];
  const current = productVersion?.split('.')[0];
  return offered !== undefined && current !== undefined && offered !== current;
}

/**
 * Recommended updates pending (security content and OS updates are always "Recommended: YES") is a fail.
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
    if (parsed.state === 'none') return { status: 'pass', evidence: { ...evidence, pending: [] }, reason: 'no updates are pending' };
    if (parsed.state === 'pending') {
      const recommended = parsed.updates
        .filter((u) => (u.recommended || u.restart) && !isMajorUpgrade(u.title, productVersion))
        .map((u) => u.title);
      evidence.pending = parsed.updates.map((u) => u.title);
      return recommended.length > 0
        ? { status: 'fail', evidence, reason: `updates are waiting to be installed: ${recommended.join(', ')}` }
        : { status: 'pass', evidence, reason: 'only optional updates or major upgrades are pending' };
    }
  }
  if (!fromPlist) return { status: 'unknown', evidence, reason: 'could not read the software update status' };
  evidence.source = 'com.apple.SoftwareUpdate';
  evidence.pending = fromPlist.pending;
  evidence.recommendedCount = fromPlist.recommendedCount;
  const patches = fromPlist.pending.filter((t) => !isMajorUpgrade(t, productVersion));
  if (patches.length > 0) return { status: 'fail', evidence, reason: `updates are waiting to be installed: ${patches.join(', ')}` };
  // A count without a list cannot be told apart from a major upgrade, so it counts as pending.
  if (fromPlist.pending.length === 0 && fromPlist.recommendedCount > 0) {
    return { status: 'fail', evidence, reason: `${fromPlist.recommendedCount} recommended update(s) are waiting to be installed` };
  }
  const last = fromPlist.lastSuccessfulCheck === null ? Number.NaN : Date.parse(fromPlist.lastSuccessfulCheck);
  if (Number.isNaN(last)) return { status: 'unknown', evidence, reason: 'macOS has no record of a successful update check' };
  const ageDays = Math.floor((now.getTime() - last) / 86_400_000);
  evidence.lastCheckAgeDays = ageDays;
  return ageDays > maxPatchAgeDays
    ? { status: 'unknown', evidence, reason: `the last successful update check was ${ageDays} days ago (offline?)` }
    : { status: 'pass', evidence, reason: 'no updates were pending at the last check' };
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
