import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/logging/logger.js';
import { Outbox } from '../../src/reporting/outbox.js';
import { sampleReport } from '../helpers/report.js';

const tmp = () => mkdtemp(join(tmpdir(), 'vigil-outbox-'));

function warnings(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  // Same typing quirk as src/logging/logger.ts: Console does extend TransportStream.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
  const logger = winston.createLogger({ level: 'warn', transports: [new winston.transports.Console({ silent: true })] });
  logger.on('data', (info: { message?: unknown }) => {
    lines.push(String(info.message));
  });
  return { logger, lines };
}

const stateOf = async (dir: string): Promise<unknown> => JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'));

describe('Outbox', () => {
  it('delivers oldest first and keeps the sequence across restarts', async () => {
    const dir = await tmp();
    let box = await Outbox.open(dir);
    const a = await box.append(sampleReport());
    const b = await box.append(sampleReport(), { inResponseTo: 'req-1' });
    expect([a.seq, b.seq]).toEqual([0, 1]);
    expect(b.inResponseTo).toBe('req-1');
    expect(box.peek(5).map((e) => e.reportId)).toEqual([a.reportId, b.reportId]);

    box = await Outbox.open(dir);
    expect(box.peek(5).map((e) => e.reportId)).toEqual([a.reportId, b.reportId]);
    await box.ack(a.reportId);
    await box.ack(b.reportId);
    box = await Outbox.open(dir);
    expect(box.stats()).toMatchObject({ entries: 0, nextSeq: 2 });
    expect((await box.append(sampleReport())).seq).toBe(2);
  });

  it('when full, drops superseded heartbeats before access-level transitions, and reports the count', async () => {
    const dir = await tmp();
    const box = await Outbox.open(dir, { maxEntries: 4 });
    const full = sampleReport();
    const blocked = sampleReport({ failing: ['disk-encryption'] });
    const seqs = [];
    for (const r of [full, full, blocked, full, full, full]) seqs.push((await box.append(r)).seq);
    const kept = box.peek(10);
    // seq 0 (first full) and 2 (-> blocked) and 3 (-> full) are transitions; 1 and 4 were plain heartbeats.
    expect(kept.map((e) => e.seq)).toEqual([0, 2, 3, 5]);
    // seq 4 carried the drop of seq 1; when seq 4 went too, seq 5 carries both.
    expect(kept.at(-1)?.dropped).toBe(2);
    expect(kept.find((e) => e.seq === 3)?.dropped).toBe(0);
    expect(box.stats().droppedTotal).toBe(2);

    // Beyond heartbeats it drops the oldest transitions, never the newest report; counts survive reopen.
    for (let i = 0; i < 3; i++) await box.append(blocked);
    const reopened = await Outbox.open(dir, { maxEntries: 4 });
    expect(reopened.stats().entries).toBe(4);
    const total = reopened.peek(10).reduce((n, e) => n + e.dropped, 0);
    expect(total + 4).toBe(9);
  });

  it('discarding a report the server refuses counts it as dropped in the next envelope', async () => {
    const dir = await tmp();
    const box = await Outbox.open(dir);
    const a = await box.append(sampleReport());
    await box.discard(a.reportId);
    expect((await Outbox.open(dir)).stats().droppedPending).toBe(1);
    expect((await box.append(sampleReport())).dropped).toBe(1);
  });

  it('recovers from leftover temp files and a corrupt record', async () => {
    const dir = await tmp();
    const box = await Outbox.open(dir);
    await box.append(sampleReport());
    await writeFile(join(dir, '.r-0000000000000001.json.abc123.tmp'), '{"envelope":');
    await writeFile(join(dir, 'r-0000000000000007.json'), '{"torn');
    const again = await Outbox.open(dir);
    expect(again.stats()).toMatchObject({ entries: 1, nextSeq: 1, droppedPending: 1 });
    expect((await readdir(dir)).sort()).toEqual(['r-0000000000000000.json', 'state.json']);
  });

  it('a lost state.json beside queued reports continues after them, says so, and records it before they go', async () => {
    const dir = await tmp();
    const box = await Outbox.open(dir);
    for (let i = 0; i < 3; i++) await box.append(sampleReport());
    await rm(join(dir, 'state.json'));
    const log = warnings();
    const reopened = await Outbox.open(dir, { logger: log.logger });
    expect(reopened.stats().nextSeq).toBe(3);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatch(/outbox state is missing or unreadable but reports up to seq 2 are queued .*continuing at 3/);
    // Delivered and deleted before any new report: the sequence must still not start over.
    for (const e of reopened.peek(10)) await reopened.ack(e.reportId);
    expect(await stateOf(dir)).toEqual({ nextSeq: 3, droppedPending: 0 });
    expect((await (await Outbox.open(dir)).append(sampleReport())).seq).toBe(3);
  });

  it('a state.json older than the queued reports (restored from a backup) does not reuse their numbers', async () => {
    const dir = await tmp();
    const box = await Outbox.open(dir);
    for (let i = 0; i < 5; i++) await box.append(sampleReport());
    await writeFile(join(dir, 'state.json'), JSON.stringify({ nextSeq: 1, droppedPending: 0 }));
    const log = warnings();
    const reopened = await Outbox.open(dir, { logger: log.logger });
    expect(log.lines).toEqual([expect.stringMatching(/outbox state says the next seq is 1 but reports up to seq 4 are queued .*continuing at 5/)]);
    expect((await reopened.append(sampleReport())).seq).toBe(5);
  });

  it('the crash between writing a report and recording the next seq is recovered without a warning', async () => {
    const dir = await tmp();
    const box = await Outbox.open(dir);
    await box.append(sampleReport());
    await box.append(sampleReport());
    // As if killed after r-1 was renamed into place but before state.json said nextSeq 2.
    await writeFile(join(dir, 'state.json'), JSON.stringify({ nextSeq: 1, droppedPending: 0 }));
    const log = warnings();
    const reopened = await Outbox.open(dir, { logger: log.logger });
    expect(log.lines).toEqual([]);
    expect(reopened.stats().nextSeq).toBe(2);
  });

  it('advancePast moves the sequence past what the server has, durably, and never backwards', async () => {
    const dir = await tmp();
    const box = await Outbox.open(dir);
    const queued = await box.append(sampleReport());
    expect(await box.advancePast(250)).toBe(251);
    expect(await box.advancePast(100)).toBeNull();
    expect(await box.advancePast(251)).toBe(252);
    // The queued report keeps its number: it may already have reached the server under it.
    expect(box.peek(1)[0]?.seq).toBe(queued.seq);
    const reopened = await Outbox.open(dir);
    expect(reopened.stats().nextSeq).toBe(252);
    expect((await reopened.append(sampleReport())).seq).toBe(252);
  });

  it('survives SIGKILL at any moment: nothing acknowledged as appended is lost, nothing is torn', async () => {
    const dir = await tmp();
    const child = join(import.meta.dirname, 'outbox-child.ts');
    const appended = new Map<string, number>();
    const acked = new Set<string>();
    let lastSeq = -1;
    for (let round = 0; round < 6; round++) {
      const proc = spawn(process.execPath, ['--import', 'tsx', child, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      let appendsThisRound = 0;
      const killed = new Promise<void>((resolve) => {
        proc.on('exit', () => {
          resolve();
        });
      });
      await new Promise<void>((resolve) => {
        const killAt = 5 + Math.floor(Math.random() * 40);
        proc.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const lines = out.split('\n');
          out = lines.pop() ?? '';
          for (const line of lines) {
            const [what, seq, id] = line.split(' ');
            if (what === 'ready') expect(Number(seq)).toBeGreaterThan(lastSeq);
            if (what === 'appended' && id) {
              appended.set(id, Number(seq));
              lastSeq = Math.max(lastSeq, Number(seq));
              if (++appendsThisRound === killAt) {
                // Let it get some way into the next append before the kill.
                setTimeout(() => {
                  proc.kill('SIGKILL');
                  resolve();
                }, Math.random() * 4);
              }
            }
            if (what === 'acking' && id) acked.add(id);
          }
        });
      });
      await killed;
      const box = await Outbox.open(dir, { maxEntries: 100_000, maxBytes: 1024 * 1024 * 1024 });
      const present = new Map(box.peek(100_000).map((e) => [e.reportId, e.seq]));
      for (const [id, seq] of appended) {
        if (!acked.has(id)) expect(present.get(id), `report seq ${seq} was acknowledged as appended`).toBe(seq);
      }
      expect(box.stats().nextSeq).toBeGreaterThan(lastSeq);
      expect(box.stats().droppedPending).toBe(0);
      const names = await readdir(dir);
      expect(names.filter((n) => n.endsWith('.tmp'))).toEqual([]);
    }
    expect(appended.size).toBeGreaterThan(30);
  }, 60_000);
});
