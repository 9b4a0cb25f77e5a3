/**
 * `npm run bench:cli`: what a client command costs as a whole process, against `node -e 0` in the same
 * run (the floor every Node CLI pays): `vigil status` through a running daemon's socket, `vigil status`
 * with no daemon (it reads the state dir), and `vigil --version`. CPU is user+system time of the reaped
 * children, from /proc/self/stat (cutime, cstime), so Linux only. Target: status through the socket <= 2x.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** CPU seconds of every child this process has waited for (clock ticks of 10 ms). */
function childrenCpu(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

function run(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: 'ignore', env });
    child.on('error', reject);
    child.on('close', (code) => {
      resolve(code ?? 1);
    });
  });
}

async function cost(name: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  await run(args, env);
  const before = childrenCpu();
  const t0 = performance.now();
  for (let i = 0; i < RUNS; i++) {
    const code = await run(args, env);
    if (code !== 0) throw new Error(`${name} exited ${code}`);
  }
  const cpuMs = ((childrenCpu() - before) / RUNS) * 1000;
  process.stdout.write(`  ${name.padEnd(34)} ${cpuMs.toFixed(0).padStart(5)} ms CPU  ${((performance.now() - t0) / RUNS).toFixed(0).padStart(5)} ms wall\n`);
  return cpuMs;
}

if (process.platform !== 'linux') throw new Error('bench:cli reads /proc; run it on Linux');
const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-cli-'));
const env = { ...process.env, XDG_STATE_HOME: join(dir, 'home'), XDG_CONFIG_HOME: join(dir, 'config'), VIGIL_SYSTEM_CONFIG: join(dir, 'none.json'), VIGIL_MANAGED_DIR: join(dir, 'none') };
const state = join(dir, 'state');
const idle = join(dir, 'idle');
process.stdout.write(`Client processes, mean of ${RUNS} runs each:\n`);
const floor = await cost('node -e 0', ['-e', '0'], env);
const version = await cost('vigil --version', [cli, '--version'], env);
await run([cli, '--state-dir', idle, 'check', '--local'], env);
const offline = await cost('vigil status (no daemon)', [cli, '--state-dir', idle, 'status'], env);
const daemon = spawn(process.execPath, [cli, '--state-dir', state, '--log-level', 'warn', 'daemon'], { stdio: 'ignore', env });
try {
  // The first scan done: status then has a report to show, as on a running laptop.
  for (let i = 0; i < 600; i++) {
    try {
      readFileSync(join(state, 'status.json'));
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const viaSocket = await cost('vigil status (through the socket)', [cli, '--state-dir', state, 'status'], env);
  process.stdout.write(
    [
      `  ratios to node -e 0: --version ${(version / floor).toFixed(2)}x, status without a daemon ${(offline / floor).toFixed(2)}x,`,
      `  status through the socket ${(viaSocket / floor).toFixed(2)}x   target <= 2x`,
      '',
    ].join('\n'),
  );
} finally {
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.on('close', r));
  rmSync(dir, { recursive: true, force: true });
}
