import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { effectiveOf, osOf } from '../../src/control-plane/service.js';
import type { Announcement, DeviceFilter, NewReport, Storage, StoredDevice } from '../../src/control-plane/storage.js';
import type { AccessLevel } from '../../src/policy/schema.js';
import type { DeviceFacts } from '../../src/protocol/report.js';
import { sampleReport } from '../helpers/report.js';

/**
 * What a storage backend must do for a fleet of 100,000 devices (issue #19): paged and filtered device lists,
 * the sweep's step and batched announcements, retention by count, age and size, paged histories, secrets and
 * tokens, deleting a device with its history. Backend-independent: each backend's test file calls this with
 * a factory for an empty store.
 */
export function storageScaleContract(name: string, makeStorage: () => Promise<Storage>): void {
  const cert = { serial: '0a', subject: 'CN=x', issuer: 'CN=int', not_after: new Date(0).toISOString(), fingerprint_sha256: 'cd' };
  const MAX_AGE_S = 900;
  const NOW = 10_000_000_000;

  const facts = (hostname: string, osId = 'ubuntu', platform: DeviceFacts['platform'] = 'linux'): DeviceFacts => {
    const f = sampleReport().device;
    return { ...f, hostname, platform, os: { ...f.os, id: osId } };
  };

  function report(deviceId: string, seq: number, receivedAt: number, over: Partial<NewReport> = {}): NewReport {
    const reportId = randomUUID();
    const posture = sampleReport();
    const text = JSON.stringify({ protocolVersion: 1, reportId, seq, dropped: 0, report: posture });
    return {
      reportId,
      deviceId,
      seq,
      receivedAt,
      accessLevel: 'full',
      dropped: 0,
      cert,
      answersRecheck: null,
      generatedAt: posture.generatedAt,
      posture: { os: { platform: 'linux', id: 'ubuntu', name: 'Ubuntu', version: '24.04' }, managed: false },
      failingChecks: [],
      body: gzipSync(text),
      ...over,
    };
  }

  async function allDevices(s: Storage, filter: DeviceFilter, limit: number): Promise<{ ids: string[]; pages: number }> {
    const ids: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const page: { devices: StoredDevice[]; next: string | null } = await s.listDevicesPage({ after, limit, staleBefore: NOW - MAX_AGE_S * 1000, filter });
      pages += 1;
      expect(page.devices.length).toBeLessThanOrEqual(limit);
      ids.push(...page.devices.map((d) => d.id));
      after = page.next;
    } while (after !== null);
    return { ids, pages };
  }

  /**
   * 1,200 devices (more than one scan step of the SQLite backend): every 7th never reported, every 5th of the
   * others stale, every 11th revoked, every 3rd on macOS with a failing firewall, one hostname "Finance-Laptop".
   */
  async function fleet(s: Storage): Promise<StoredDevice[]> {
    const n = 1200;
    const ids = Array.from({ length: n }, (_, i) => `dev-${String(i).padStart(5, '0')}`);
    await Promise.all(
      ids.map((id, i) =>
        s.enrollDevice({ id, facts: i === 777 ? facts('Finance-Laptop') : i % 3 === 0 ? facts(`mac-${i}`, 'macos', 'darwin') : facts(`host-${i}`), secretId: 's', now: 1 }),
      ),
    );
    await Promise.all(
      ids.map((id, i) => {
        if (i % 7 === 0) return Promise.resolve(null);
        const receivedAt = i % 5 === 0 ? NOW - MAX_AGE_S * 1000 - 1 : NOW - 1000;
        const level: AccessLevel = i % 2 === 0 ? 'full' : 'limited';
        const mac = i % 3 === 0;
        return s.ingestReport(
          report(id, 1, receivedAt, {
            accessLevel: level,
            failingChecks: mac ? ['firewall', 'disk-encryption'] : [],
            posture: { os: mac ? { platform: 'darwin', id: 'macos', name: 'macOS', version: '15.1' } : { platform: 'linux', id: 'ubuntu', name: 'Ubuntu', version: '24.04' }, managed: false },
          }),
        );
      }),
    );
    await Promise.all(ids.filter((_, i) => i % 11 === 0).map((id) => s.revokeDevice(id, NOW - 5, 'test')));
    const out: StoredDevice[] = [];
    for (const id of ids) {
      const d = await s.getDevice(id);
      if (d) out.push(d);
    }
    return out;
  }

  describe(`${name}: storage at fleet scale`, () => {
    it('pages the device list in id order with filters that agree with effectiveOf', async () => {
      const s = await makeStorage();
      try {
        const devices = await fleet(s);
        const all = await allDevices(s, {}, 100);
        expect(all.ids).toEqual(devices.map((d) => d.id));
        expect(all.pages).toBeGreaterThanOrEqual(12);
        const eff = (d: StoredDevice) => effectiveOf(d, MAX_AGE_S, NOW);
        const cases: [DeviceFilter, (d: StoredDevice) => boolean][] = [
          [{ state: 'stale' }, (d) => eff(d).state === 'stale'],
          [{ state: 'enrolled' }, (d) => eff(d).state === 'enrolled'],
          [{ state: 'revoked' }, (d) => eff(d).state === 'revoked'],
          [{ state: 'active', level: 'limited' }, (d) => eff(d).state === 'active' && eff(d).level === 'limited'],
          [{ level: 'blocked' }, (d) => eff(d).level === 'blocked'],
          [{ os: 'macos' }, (d) => osOf(d).id === 'macos'],
          [{ os: 'ubuntu', state: 'active' }, (d) => osOf(d).id === 'ubuntu' && eff(d).state === 'active'],
          [{ os: 'darwin', failingCheck: 'firewall' }, (d) => osOf(d).platform === 'darwin' && d.lastSeen !== null],
          [{ failingCheck: 'disk-encryption' }, (d) => d.facts.os.id === 'macos' && d.lastSeen !== null],
          [{ failingCheck: 'disk' }, () => false],
          [{ seenBefore: NOW - MAX_AGE_S * 1000 }, (d) => d.lastSeen !== null && d.lastSeen < NOW - MAX_AGE_S * 1000],
          [{ seenAfter: NOW - 2000 }, (d) => d.lastSeen !== null && d.lastSeen >= NOW - 2000],
          [{ q: 'finance' }, (d) => d.facts.hostname === 'Finance-Laptop'],
          [{ q: 'dev-0119' }, (d) => d.id.startsWith('dev-0119')],
        ];
        for (const [filter, expected] of cases) {
          const want = devices.filter(expected).map((d) => d.id);
          expect((await allDevices(s, filter, 37)).ids, JSON.stringify(filter)).toEqual(want);
        }
        // One match at the far end of the table: found through every scan step, in one page.
        const lone = await s.listDevicesPage({ after: null, limit: 10, staleBefore: NOW - MAX_AGE_S * 1000, filter: { q: 'dev-01199' } });
        expect(lone).toEqual({ devices: [expect.objectContaining({ id: 'dev-01199' })], next: null });
        // The cursor starts after the id it names.
        const after = await s.listDevicesPage({ after: 'dev-00500', limit: 2, staleBefore: 0, filter: {} });
        expect(after.devices.map((d) => d.id)).toEqual(['dev-00501', 'dev-00502']);
        expect(after.next).toBe('dev-00502');
      } finally {
        await s.close();
      }
    }, 60_000);

    it('finds the devices whose announcement is out of date, a step at a time, and announces them in batches', async () => {
      const s = await makeStorage();
      try {
        const devices = await fleet(s);
        const staleBefore = NOW - MAX_AGE_S * 1000;
        const scan = async (limit: number): Promise<StoredDevice[]> => {
          const found: StoredDevice[] = [];
          let after: string | null = null;
          do {
            const step: { devices: StoredDevice[]; next: string | null } = await s.devicesNeedingAnnouncement({ after, limit, staleBefore });
            expect(step.devices.length).toBeLessThanOrEqual(limit);
            found.push(...step.devices);
            after = step.next;
          } while (after !== null);
          return found;
        };
        // Nothing was ever announced: every device needs it.
        const first = await scan(250);
        expect(first.map((d) => d.id)).toEqual(devices.map((d) => d.id));
        const announce = (d: StoredDevice, now: number, guarded: boolean): Announcement => {
          const e = effectiveOf(d, MAX_AGE_S, now);
          return {
            id: d.id,
            level: e.level,
            state: e.state,
            attrs: 'a',
            event: { device: d.id, previous: d.announcedLevel, current: e.level, compliant: e.compliant, state: e.state, cause: 'stale', at: new Date(now).toISOString() },
            ...(guarded ? { ifUnchanged: { lastSeen: d.lastSeen, revokedAt: d.revokedAt, announcedLevel: d.announcedLevel, announcedState: d.announcedState } } : {}),
          };
        };
        const ids = await s.announceMany(first.map((d) => announce(d, NOW, false)));
        expect(ids).toHaveLength(devices.length);
        expect(new Set(ids).size).toBe(devices.length);
        expect(await scan(250)).toEqual([]);
        // Time passes: every active device goes stale at once.
        const later = NOW + MAX_AGE_S * 1000;
        const activeNow = devices.filter((d) => effectiveOf(d, MAX_AGE_S, NOW).state === 'active').map((d) => d.id);
        const stale = [];
        let after: string | null = null;
        do {
          const step: { devices: StoredDevice[]; next: string | null } = await s.devicesNeedingAnnouncement({ after, limit: 300, staleBefore: later - MAX_AGE_S * 1000 });
          stale.push(...step.devices);
          after = step.next;
        } while (after !== null);
        expect(stale.map((d) => d.id)).toEqual(activeNow);
        // A report arrives for one of them between the sweep's read and its write: that one is left alone.
        const [raced, ...rest] = stale;
        if (!raced) throw new Error('no stale device');
        await s.ingestReport(report(raced.id, 2, later));
        const { newest } = await s.eventBounds();
        const made = await s.announceMany(stale.map((d) => announce(d, later, true)));
        expect(made[0]).toBeNull();
        expect(made.slice(1).every((id) => typeof id === 'number')).toBe(true);
        expect((await s.eventsSince(newest, 10_000)).map((e) => e.event.device)).toEqual(rest.map((d) => d.id));
        expect(await s.getDevice(rest[0]?.id ?? '')).toMatchObject({ announcedState: 'stale', announcedLevel: 'blocked' });
      } finally {
        await s.close();
      }
    }, 60_000);

    it('prunes history by count, age and size in batches, never a device’s latest report', async () => {
      const s = await makeStorage();
      try {
        await s.enrollDevice({ id: 'dev-a', facts: facts('a'), secretId: 's', now: 1 });
        await s.enrollDevice({ id: 'dev-b', facts: facts('b'), secretId: 's', now: 1 });
        await s.enrollDevice({ id: 'dev-c', facts: facts('c'), secretId: 's', now: 1 });
        // dev-a: 30 reports at t=1000..1029; dev-b: 5 at t=2000..2004; dev-c: one, long ago.
        for (let i = 0; i < 30; i++) await s.ingestReport(report('dev-a', i + 1, 1000 + i));
        for (let i = 0; i < 5; i++) await s.ingestReport(report('dev-b', i + 1, 2000 + i));
        await s.ingestReport(report('dev-c', 1, 10));
        const seqs = async (id: string): Promise<number[]> => (await s.listReports(id, { after: null, limit: 1000 })).items.map((r) => r.seq);
        const none = { keep: 1000, olderThan: null, maxBytesPerDevice: null };
        expect(await s.pruneReports(none, 7)).toBe(0);
        // Count: newest 20 of dev-a, in batches of 3.
        expect(await s.pruneReports({ ...none, keep: 20 }, 3)).toBe(10);
        expect(await seqs('dev-a')).toEqual(Array.from({ length: 20 }, (_, i) => 30 - i));
        expect(await s.pruneReports({ ...none, keep: 20 }, 3)).toBe(0);
        // Age: nothing received before t=1015 except each device's latest (dev-c's only one).
        expect(await s.pruneReports({ ...none, olderThan: 1015 }, 4)).toBe(5);
        expect(await seqs('dev-a')).toEqual(Array.from({ length: 15 }, (_, i) => 30 - i));
        expect(await seqs('dev-c')).toEqual([1]);
        // Size: every body is the same size here; room for 4 of them (and a bit) keeps 4.
        const size = (await s.listReports('dev-a', { after: null, limit: 1 })).items[0]?.bodySize ?? 0;
        expect(size).toBeGreaterThan(100);
        expect(await s.pruneReports({ ...none, maxBytesPerDevice: size * 4 + 10 }, 2)).toBe(11 + 1);
        expect(await seqs('dev-a')).toEqual([30, 29, 28, 27]);
        expect(await seqs('dev-b')).toEqual([5, 4, 3, 2]);
        // Smaller than one report: the latest stays all the same.
        expect(await s.pruneReports({ ...none, maxBytesPerDevice: 1 }, 100)).toBe(6);
        expect(await seqs('dev-a')).toEqual([30]);
        expect((await s.getLatestReport('dev-a'))?.seq).toBe(30);
        // Counters followed the deletions: a report more is over the limit of one again, and only that.
        await s.ingestReport(report('dev-a', 31, 3000));
        expect(await s.pruneReports({ ...none, keep: 1 }, 100)).toBe(1);
        expect(await seqs('dev-a')).toEqual([31]);
      } finally {
        await s.close();
      }
    });

    it('deletes a device with a history longer than one batch', async () => {
      const s = await makeStorage();
      try {
        await s.enrollDevice({ id: 'dev-del', facts: facts('del'), secretId: 's', now: 1 });
        await s.enrollDevice({ id: 'dev-keep', facts: facts('keep'), secretId: 's', now: 1 });
        await Promise.all(Array.from({ length: 1234 }, (_, i) => s.ingestReport(report('dev-del', i + 1, 1000 + i))));
        await s.ingestReport(report('dev-keep', 1, 5000));
        expect(await s.deleteDevice('dev-del')).toBe(true);
        expect(await s.getDevice('dev-del')).toBeNull();
        expect((await s.listReports('dev-del', { after: null, limit: 10 })).items).toEqual([]);
        expect((await s.listReports('dev-keep', { after: null, limit: 10 })).items).toHaveLength(1);
        expect(await s.deleteDevice('dev-del')).toBe(false);
      } finally {
        await s.close();
      }
    }, 30_000);

    it('pages reports, secrets and tokens newest first', async () => {
      const s = await makeStorage();
      try {
        await s.enrollDevice({ id: 'dev-p', facts: facts('p'), secretId: 's', now: 1 });
        for (let i = 1; i <= 25; i++) await s.ingestReport(report('dev-p', i, 1000 + i));
        const seen: number[] = [];
        let after: string | null = null;
        do {
          const page: Awaited<ReturnType<Storage['listReports']>> = await s.listReports('dev-p', { after, limit: 10 });
          seen.push(...page.items.map((r) => r.seq));
          after = page.next;
        } while (after !== null);
        expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i));
        // Same creation time for several: the id breaks the tie, so nothing is skipped or repeated.
        for (let i = 0; i < 7; i++) {
          await s.createSecret({ id: `sec-${i}`, hash: Buffer.alloc(32), label: null, createdAt: 100 + (i % 3), expiresAt: 10_000, usesTotal: 1 });
          await s.createApiToken({ id: `tok-${i}`, hash: Buffer.alloc(32), scope: 'gateway', name: `t${i}`, createdAt: 100 + (i % 3) });
        }
        const secrets: string[] = [];
        const tokens: string[] = [];
        for (const [list, out] of [
          [(p: { after: string | null; limit: number }) => s.listSecrets(p), secrets],
          [(p: { after: string | null; limit: number }) => s.listApiTokens(p), tokens],
        ] as const) {
          let a: string | null = null;
          do {
            const page: { items: { id: string }[]; next: string | null } = await list({ after: a, limit: 3 });
            out.push(...page.items.map((x) => x.id));
            a = page.next;
          } while (a !== null);
        }
        expect(secrets).toEqual(['sec-2', 'sec-5', 'sec-1', 'sec-4', 'sec-0', 'sec-3', 'sec-6']);
        expect(tokens).toEqual(secrets.map((x) => x.replace('sec', 'tok')));
      } finally {
        await s.close();
      }
    });

    it('prunes events in batches, oldest first', async () => {
      const s = await makeStorage();
      try {
        await s.enrollDevice({ id: 'dev-e', facts: facts('e'), secretId: 's', now: 1 });
        const items: Announcement[] = Array.from({ length: 250 }, (_, i) => ({
          id: 'dev-e',
          level: 'full',
          state: 'active',
          attrs: 'a',
          event: { device: 'dev-e', previous: null, current: 'full', compliant: true, state: 'active', cause: 'report', at: new Date(1000 + i).toISOString() },
        }));
        await s.announceMany(items);
        expect(await s.pruneEvents(10, 0, 100)).toBe(240);
        expect(await s.eventBounds()).toEqual({ oldest: 241, newest: 250 });
        expect(await s.pruneEvents(100, 1245, 3)).toBe(5);
        expect(await s.eventBounds()).toEqual({ oldest: 246, newest: 250 });
      } finally {
        await s.close();
      }
    });
  });
}
