import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, isolatedEnv, runCliProcess, startCliProcess, tempDir, waitFor } from '../helpers.js';

/*
 * The one-daemon-per-state-dir lock with real processes: the built CLI's daemon, a `sleep` standing in
 * for an unrelated process that inherited a recycled pid, and SIGKILL.
 */

const env = isolatedEnv(tempDir(), { VIGIL_SCAN_INTERVAL_SECONDS: '3600' });
const children: { kill: (s: NodeJS.Signals) => boolean }[] = [];

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

function daemon(stateDir: string): ReturnType<typeof startCliProcess> {
  const d = startCliProcess(['daemon', '--state-dir', stateDir], env);
  children.push(d.child);
  return d;
}

async function started(d: ReturnType<typeof startCliProcess>): Promise<void> {
  await waitFor(() => (/daemon started \(pid \d+\)/.test(d.output()) ? true : undefined), 20_000, 'the daemon to start');
}

async function stop(d: ReturnType<typeof startCliProcess>, signal: NodeJS.Signals): Promise<number | null> {
  const closed = new Promise<number | null>((r) => d.child.once('close', r));
  d.child.kill(signal);
  return closed;
}

describe.runIf(process.platform !== 'win32' && existsSync(CLI))('daemon lock', () => {
  it('starts although daemon.pid names a live process that is not a Vigil daemon', async () => {
    const stateDir = tempDir();
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    children.push(sleeper);
    writeFileSync(join(stateDir, 'daemon.pid'), `${sleeper.pid}\n`);
    const d = daemon(stateDir);
    await started(d);
    const status = JSON.parse((await runCliProcess(['status', '--json', '--state-dir', stateDir], env)).stdout) as { daemon: { running: boolean; pid?: number } };
    expect(status.daemon).toMatchObject({ running: true, pid: d.child.pid });
    expect(await stop(d, 'SIGTERM')).toBe(0);
    expect(sleeper.exitCode).toBeNull();
  }, 40_000);

  it('refuses a second daemon on the same state dir with one line naming the first one’s pid', async () => {
    const stateDir = tempDir();
    const first = daemon(stateDir);
    await started(first);
    const second = await runCliProcess(['daemon', '--state-dir', stateDir], env);
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(`vigil: another vigil daemon is running (pid ${first.child.pid}) with state dir ${stateDir}; stop it or use --state-dir\n`);
    expect(await stop(first, 'SIGTERM')).toBe(0);
    const status = JSON.parse((await runCliProcess(['status', '--json', '--state-dir', stateDir], env)).stdout) as { daemon: { running: boolean } };
    expect(status.daemon.running).toBe(false);
  }, 40_000);

  it('is not blocked by what a SIGKILLed daemon left behind', async () => {
    const stateDir = tempDir();
    const killed = daemon(stateDir);
    await started(killed);
    await stop(killed, 'SIGKILL');
    // The socket file and the pid file both outlive it; neither may stop the next start.
    expect(existsSync(join(stateDir, 'daemon.sock'))).toBe(true);
    expect(existsSync(join(stateDir, 'daemon.pid'))).toBe(true);
    const status = JSON.parse((await runCliProcess(['status', '--json', '--state-dir', stateDir], env)).stdout) as { daemon: { running: boolean } };
    expect(status.daemon.running).toBe(false);
    const next = daemon(stateDir);
    await started(next);
    expect(await stop(next, 'SIGTERM')).toBe(0);
  }, 40_000);

  it('lets exactly one of several daemons started at once on a stale lock win', async () => {
    const stateDir = tempDir();
    const killed = daemon(stateDir);
    await started(killed);
    await stop(killed, 'SIGKILL');
    const racers = [daemon(stateDir), daemon(stateDir), daemon(stateDir)];
    const exits = racers.map((d) => new Promise<number | null>((r) => d.child.once('close', r)));
    // Losers exit 1 quickly; the winner keeps running.
    await new Promise((r) => setTimeout(r, 8000));
    const running = racers.filter((d) => d.child.exitCode === null);
    expect(running).toHaveLength(1);
    for (const d of racers.filter((x) => x.child.exitCode !== null)) {
      expect(d.child.exitCode).toBe(1);
      expect(d.output()).toMatch(/another vigil daemon is running \(pid \d+\)/);
    }
    const winner = running[0];
    if (winner) expect(await stop(winner, 'SIGTERM')).toBe(0);
    await Promise.all(exits);
  }, 60_000);
});
