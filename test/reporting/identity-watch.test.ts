import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IdentityWatch, statKey } from '../../src/reporting/identity-watch.js';

/* Real files in a temp state dir: inotify is what the daemon relies on, so it is not mocked. */

const wait = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await wait(20);
  }
}

/** As IdentityStore writes it: a temp file renamed over the pointer. */
async function writePointer(stateDir: string, text: string): Promise<void> {
  const dir = join(stateDir, 'identity');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'current.json.tmp'), text);
  await rename(join(dir, 'current.json.tmp'), join(dir, 'current.json'));
}

let watch: IdentityWatch | undefined;
afterEach(() => {
  watch?.stop();
});

describe('IdentityWatch', () => {
  it('with alsoFiles, also reports those files in the state dir being written (as writeFileAtomic does)', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'vigil-idwatch-'));
    let changes = 0;
    watch = new IdentityWatch({ stateDir, settleMs: 50, alsoFiles: ['enrollment.json'], onChange: () => {
        changes++;
        return Promise.resolve();
      } });
    await watch.start();
    await writeFile(join(stateDir, 'status.json'), '{}');
    await wait(300);
    expect(changes).toBe(0);
    await writeFile(join(stateDir, '.enrollment.json.abc.tmp'), '{}');
    await rename(join(stateDir, '.enrollment.json.abc.tmp'), join(stateDir, 'enrollment.json'));
    await until(() => changes === 1);
    await writePointer(stateDir, '{"v":1}');
    await until(() => changes === 2);
  });

  it('reports the pointer appearing (identity dir created later), changing and going away, and nothing else', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'vigil-idwatch-'));
    let changes = 0;
    watch = new IdentityWatch({ stateDir, settleMs: 50, onChange: () => {
        changes++;
        return Promise.resolve();
      } });
    await watch.start();

    await writeFile(join(stateDir, 'status.json'), '{}');
    await mkdir(join(stateDir, 'outbox'));
    await wait(300);
    expect(changes).toBe(0);

    await writePointer(stateDir, '{"v":1}');
    await until(() => changes === 1);
    await writePointer(stateDir, '{"v":2}');
    await until(() => changes === 2);
    // Files next to the pointer (new key and certificate files) are not news by themselves.
    await writeFile(join(stateDir, 'identity', 'cert-2.crt'), 'x');
    await wait(300);
    expect(changes).toBe(2);

    await rm(join(stateDir, 'identity', 'current.json'));
    await until(() => changes === 3);
    // The identity dir removed and made again: the watch on it is replaced.
    await rm(join(stateDir, 'identity'), { recursive: true });
    await writePointer(stateDir, '{"v":3}');
    await until(() => changes === 4);
  });

  it('a burst of writes gives one onChange, and onChange calls never overlap', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'vigil-idwatch-'));
    let running = 0;
    let maxRunning = 0;
    let changes = 0;
    watch = new IdentityWatch({
      stateDir,
      settleMs: 100,
      onChange: async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        changes++;
        await wait(200);
        running--;
      },
    });
    await watch.start();
    for (let i = 0; i < 5; i++) await writePointer(stateDir, `{"v":${i}}`);
    await until(() => changes >= 1);
    await wait(400);
    expect(changes).toBe(1);
    await writePointer(stateDir, '{"v":"late"}');
    await wait(120);
    await writePointer(stateDir, '{"v":"later"}');
    await wait(700);
    await watch.idle();
    expect(maxRunning).toBe(1);
    expect(changes).toBeGreaterThanOrEqual(2);
  });

  it('the poll catches a change with no file event', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'vigil-idwatch-'));
    let changes = 0;
    // A settle longer than the test: only the poll can deliver the change.
    watch = new IdentityWatch({ stateDir, settleMs: 60_000, pollMs: 200, onChange: () => {
        changes++;
        return Promise.resolve();
      } });
    await watch.start();
    await writePointer(stateDir, '{"v":1}');
    await until(() => changes === 1, 2000);
  });

  it('statKey tells versions apart without reading the file', () => {
    expect(statKey(undefined)).toBe('absent');
    expect(statKey({ ino: 1, size: 2, mtimeMs: 3 })).not.toBe(statKey({ ino: 4, size: 2, mtimeMs: 3 }));
  });
});
