// `npm run smoke:electron [-- --measure]`: starts an agent, then the real tray app (dist/electron/main.js --smoke),
// which creates the tray, opens the walkthrough, waits for it to render the agent's state, closes it and
// checks its renderer process is gone. With --measure it also reports the idle footprint.
// Where Electron's binary is missing (it cannot be downloaded on CI) it says SKIPPED and why: never a
// silent pass.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';

const measure = process.argv.includes('--measure');
const require = createRequire(import.meta.url);

function skip(reason) {
  console.log(`SKIPPED: ${reason}`);
  process.exit(0);
}

let binary;
try {
  binary = require('electron');
} catch (err) {
  skip(`Electron binary not installed (${err.message.split('\n')[0]}). On a machine with network access run \`node node_modules/electron/install.js\`, then re-run.`);
}
if (typeof binary !== 'string' || !existsSync(binary)) skip(`Electron binary not installed (${binary} does not exist); run \`node node_modules/electron/install.js\``);

const command = [binary];
if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
  const xvfb = ['/usr/bin/xvfb-run', '/usr/local/bin/xvfb-run'].find((p) => existsSync(p));
  if (!xvfb) skip('no display (DISPLAY and WAYLAND_DISPLAY unset) and xvfb-run not found; install xvfb (`apt-get install xvfb`) or run in a desktop session');
  command.unshift(xvfb, '--auto-servernum');
}

const build = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], { stdio: 'inherit' });
if (build.status !== 0) {
  console.error('smoke:electron: the build failed');
  process.exit(1);
}

// A state dir of its own, so the smoke run never meets a developer's running daemon (its pid lock). The
// tray is a client: it needs an agent to talk to, started here on that state dir (and its socket).
const stateDir = mkdtempSync(join(tmpdir(), 'vigil-smoke-'));
const agent = spawn(process.execPath, [join('dist', 'src', 'cli', 'main.js'), '--state-dir', stateDir, 'daemon'], { stdio: 'ignore' });
const args = [join('dist', 'electron', 'main.js'), '--smoke', '--state-dir', stateDir];
if (measure) args.push('--measure');
// Chromium refuses to run as root without this; the smoke test is the only place that happens.
if (typeof process.getuid === 'function' && process.getuid() === 0) args.push('--no-sandbox');

const [program, ...rest] = command;
const child = spawn(program, [...rest, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ELECTRON_ENABLE_LOGGING: '1' } });
let out = '';
child.stdout.on('data', (d) => {
  out += d.toString();
  process.stdout.write(d);
});
const timer = setTimeout(() => {
  console.error('smoke:electron: timed out after 120 s');
  child.kill('SIGKILL');
}, 120_000);
child.on('close', (code) => {
  clearTimeout(timer);
  agent.kill('SIGTERM');
  const line = out.split('\n').find((l) => l.startsWith('SMOKE '));
  if (!line) {
    console.error(`smoke:electron: FAILED: the app exited (code ${code}) without a SMOKE result`);
    process.exit(1);
  }
  const r = JSON.parse(line.slice('SMOKE '.length));
  const checks = [
    ['tray created', r.trayCreated === true],
    ['walkthrough window shown', r.windowShown === true],
    [`walkthrough rendered the state ("${r.progressText ?? ''}")`, typeof r.progressText === 'string' && r.progressText !== ''],
    ['window closed and destroyed', r.windowClosed === true],
    ['renderer process released after close', r.rendererReleased === true],
  ];
  for (const [name, ok] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}`);
  if (r.error) console.log(`FAIL ${r.error}`);
  if (r.idle) {
    console.log(`idle footprint: ${r.idle.totalMiB} MiB working set across ${r.idle.processes.length} processes`);
    for (const p of r.idle.processes) console.log(`  ${p.type.padEnd(10)} ${String(p.workingSetMiB).padStart(7)} MiB  ${p.cpuPercent}% CPU`);
  }
  process.exit(checks.every(([, ok]) => ok) && !r.error ? 0 : 1);
});
