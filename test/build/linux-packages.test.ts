import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAYOUT, rpmScriptlets } from '../../src/packaging/linux-files.js';
import { AGENT_CLI, CONTROL_PLANE_CLI, startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { startStepCa, type StepCa } from '../harness/stepca.js';
import { waitFor } from '../helpers.js';

/*
 * The Linux packages, built once for the file by the real commands (`npm run package`'s CLI and
 * `vigil-control-plane package`), read back with dpkg-deb, rpm, lintian and systemd-analyze, then the enrolled
 * .deb installed for real by dpkg into a throwaway root where its maintainer scripts run, its unit's ExecStart
 * started there against a real step-ca and control plane, upgraded and purged; the .rpm installed by rpm into
 * another such root, its scriptlets run, upgraded and erased.
 */

const PACKAGING_CLI = join(dirname(AGENT_CLI), '..', 'packaging', 'cli.js');
const TOOLS = ['dpkg-deb', 'fakeroot', 'rpmbuild', 'rpm', 'lintian', 'systemd-analyze', 'shellcheck', 'desktop-file-validate', 'unshare', 'chroot'];
const have = (tool: string): boolean => ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].some((d) => existsSync(join(d, tool)));
const ready = existsSync(AGENT_CLI) && existsSync(PACKAGING_CLI) && TOOLS.every(have) && process.getuid?.() === 0;

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

function sh(cmd: string, args: readonly string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Out> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

async function ok(cmd: string, args: readonly string[]): Promise<string> {
  const r = await sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** `dpkg-deb -c` lines as path → "mode owner". */
async function debListing(deb: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const line of (await ok('dpkg-deb', ['-c', deb])).split('\n')) {
    const m = /^(\S+)\s+(\S+)\s+\d+\s+\S+\s+\S+\s+\.(\/\S*?)\/?(?: -> .*)?$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined && m[3] !== undefined) out.set(m[3] === '/' ? '/' : m[3], `${m[1]} ${m[2]}`);
  }
  return out;
}

const debFile = (deb: string, path: string): Promise<string> =>
  sh('sh', ['-c', 'dpkg-deb --fsys-tarfile "$0" | tar -xO ".$1"', deb, path]).then((r) => {
    if (r.code !== 0) throw new Error(`${path} in ${deb}: ${r.stderr}`);
    return r.stdout;
  });

let dir = '';
let ca: StepCa | undefined;
let cp: ControlPlane | undefined;
let plainDeb = '';
let enrolledDeb = '';
let rpmFile = '';
let lintian: Promise<Out> | undefined;
let scans: Promise<[Out, Out]> | undefined;
const timings: Record<string, number> = {};

async function timed<T>(name: string, f: () => Promise<T>): Promise<T> {
  const t = Date.now();
  try {
    return await f();
  } finally {
    timings[name] = Date.now() - t;
  }
}

/**
 * A scan (`vigil check --local --json`) in a private mount namespace with a fresh /tmp, and with `readOnly` the
 * whole root file system read-only: what ProtectSystem=strict, ProtectHome=read-only and PrivateTmp leave the
 * checks (the state dir is the writable /tmp here, as StateDirectory is under systemd).
 */
async function scanIn(readOnly: boolean): Promise<Out> {
  // The writable place is a tmpfs on a scratch dir of its own, not over /tmp: the checkout under test may live
  // in /tmp (CI clones there), and a tmpfs there would hide the very build being run. The agent's temp files
  // follow TMPDIR, as they follow PrivateTmp's /tmp under systemd.
  const scratch = join(dir, readOnly ? 'scan-ro' : 'scan-rw');
  await mkdir(scratch, { recursive: true });
  const ro = readOnly ? 'mount -o remount,bind,ro / && ! touch /etc/.vigil-ro-probe 2>/dev/null && ' : '';
  const script = `mount -t tmpfs tmpfs "$2" && ${ro}mkdir "$2/state" "$2/tmp" && TMPDIR="$2/tmp" XDG_STATE_HOME="$2/state" exec "$0" "$1" check --local --json`;
  return sh('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, process.execPath, AGENT_CLI, scratch]);
}

beforeAll(async () => {
  if (!ready) return;
  dir = await mkdtemp(join(tmpdir(), 'vigil-pkg-test-'));
  ca = await startStepCa({ claims: { defaultTLSCertDuration: '1h' } });
  cp = await startControlPlane(ca, dir, { reportIntervalSeconds: 3600 });
  await writeFile(join(dir, 'secret'), `${await cp.secret(1)}\n`, { mode: 0o600 });
  // The server's own config: the package command takes the CA URL, the root and the listen address from it.
  await writeFile(join(dir, 'serve.json'), JSON.stringify({ listen: cp.url.replace('https://', ''), caUrl: ca.url, caRoot: join(dir, 'root.crt') }));
  const pkgCli = (target: string, out: string): Promise<string> => ok(process.execPath, [PACKAGING_CLI, '--target', target, '--out', out]);
  // Two CPUs: the three builds overlap (gzip/zstd of the runtime is most of each).
  const [plain, rpm, enrolled] = await Promise.all([
    timed('build plain .deb', () => pkgCli('deb', join(dir, 'plain'))),
    timed('build .rpm', () => pkgCli('rpm', join(dir, 'rpm'))),
    timed('build enrolled .deb', () =>
      ok(process.execPath, [CONTROL_PLANE_CLI, 'package', '--target', 'deb', '--config', join(dir, 'serve.json'), '--enrollment-secret-file', join(dir, 'secret'), '--out', join(dir, 'enrolled')]),
    ).then((out) => {
      // lintian takes most of a minute on a 35 MB package: it starts as soon as there is one and runs while
      // the other tests do. The enrolled .deb is the plain one plus the enrollment files, so it covers both.
      lintian = timed('lintian', () => sh('lintian', ['--no-cfg', out.trim()]));
      return out;
    }),
  ]);
  // One after the other, so both see the package manager's state at about the same time; alongside the tests.
  scans = timed('scans rw, ro', async () => [await scanIn(false), await scanIn(true)]);
  plainDeb = plain.trim().split(' ')[0] ?? '';
  rpmFile = rpm.trim().split(' ')[0] ?? '';
  enrolledDeb = enrolled.trim();
}, 180_000);

afterAll(async () => {
  await lintian;
  await scans;
  await cp?.stop();
  await ca?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  process.stderr.write(`linux-packages timings (ms): ${JSON.stringify(timings)}\n`);
});

describe.skipIf(!ready)('the .deb', () => {
  it('holds the runtime, the agent and production modules only, owned by root, under /opt/vigil', async () => {
    const files = await debListing(plainDeb);
    expect(files.get('/usr/bin/vigil')).toBe('-rwxr-xr-x root/root');
    expect(files.get(LAYOUT.node)).toBe('-rwxr-xr-x root/root');
    expect(files.get(LAYOUT.cli)).toBe('-rw-r--r-- root/root');
    expect(files.get(LAYOUT.unitDeb)).toBe('-rw-r--r-- root/root');
    expect(files.get(LAYOUT.autostart)).toBe('-rw-r--r-- root/root');
    expect(files.get(`${LAYOUT.app}/node_modules/better-sqlite3/build/Release/better_sqlite3.node`)).toBe('-rw-r--r-- root/root');
    expect(files.get(`${LAYOUT.app}/node_modules/keytar/build/Release/keytar.node`)).toBe('-rw-r--r-- root/root');
    expect(files.get(`${LAYOUT.app}/native-scripts/macos/posture.sh`)).toBe('-rwxr-xr-x root/root');
    const paths = [...files.keys()];
    for (const p of paths) expect(p, p).toMatch(/^\/(opt\/vigil|usr\/bin\/vigil$|usr\/share\/(doc|man|lintian)|lib\/systemd\/system|etc\/xdg)|^\/$|^\/(usr|usr\/bin|usr\/share|lib|lib\/systemd|etc|etc\/xdg|opt)$/);
    for (const dev of ['electron', 'electron-updater', 'vitest', 'typescript', 'eslint', 'playwright-core', '@types/node', 'tsx']) {
      expect(paths.some((p) => p.startsWith(`${LAYOUT.app}/node_modules/${dev}/`)), dev).toBe(false);
    }
    expect(paths.filter((p) => /\.(map|ts)$/.test(p) || /\/(test|tests|__tests__)\//.test(p))).toEqual([]);
    expect(paths.some((p) => p.startsWith(`${LAYOUT.app}/dist/src/control-plane/`) || p.includes('/dist/src/packaging/'))).toBe(false);
    // The baked-in enrollment is in the enrolled package only.
    expect(files.has(LAYOUT.enrollmentSecret)).toBe(false);
    expect(await debFile(plainDeb, '/usr/bin/vigil')).toContain(`exec ${LAYOUT.node} ${LAYOUT.cli} "$@"`);
    const size = (await stat(plainDeb)).size;
    expect(size).toBeLessThan(45 * 1024 * 1024);
  });

  it('declares its dependencies, conffiles and maintainer scripts', async () => {
    const info = await ok('dpkg-deb', ['-I', plainDeb]);
    expect(info).toMatch(/^ Package: vigil$/m);
    expect(info).toMatch(/^ Depends: .*init-system-helpers/m);
    for (const s of ['postinst', 'prerm', 'postrm', 'conffiles', 'md5sums']) expect(info).toMatch(new RegExp(`\\b${s}\\b`));
    const control = join(dir, 'control-plain');
    await ok('dpkg-deb', ['-e', plainDeb, control]);
    expect((await readFile(join(control, 'conffiles'), 'utf8')).trim()).toBe(LAYOUT.autostart);
  });

  it('has maintainer scripts that parse and pass shellcheck, deb and rpm alike', async () => {
    const control = join(dir, 'control-scripts');
    await ok('dpkg-deb', ['-e', enrolledDeb, control]);
    const scripts = ['postinst', 'prerm', 'postrm'].map((s) => join(control, s));
    for (const [name, body] of Object.entries(rpmScriptlets())) {
      await writeFile(join(control, `rpm-${name}`), `#!/bin/sh\n${body}\n`);
      scripts.push(join(control, `rpm-${name}`));
    }
    for (const s of scripts) {
      const syntax = await sh('sh', ['-n', s]);
      expect(syntax.code, `${s}: ${syntax.stderr}`).toBe(0);
    }
    const lint = await sh('shellcheck', ['-s', 'sh', ...scripts]);
    expect(lint.code, lint.stdout).toBe(0);
    const postinst = await readFile(join(control, 'postinst'), 'utf8');
    // Enabling and starting only where systemd is PID 1.
    expect(postinst).toMatch(/if \[ -d \/run\/systemd\/system \]; then[\s\S]*deb-systemd-helper enable vigil\.service[\s\S]*fi/);
  });

  it('bakes in the enrollment: managed config for this control plane and CA, the secret root-only', async () => {
    const files = await debListing(enrolledDeb);
    expect(files.get(LAYOUT.enrollmentSecret)).toBe('-rw------- root/root');
    expect(files.get(LAYOUT.enrollmentConfig)).toBe('-rw-r--r-- root/root');
    const managed = JSON.parse(await debFile(enrolledDeb, LAYOUT.enrollmentConfig)) as unknown;
    expect(managed).toEqual({
      identity: { caUrl: ca?.url, fingerprint: ca?.rootFingerprint },
      reporting: { controlPlaneUrl: cp?.url, enrollmentSecretFile: LAYOUT.enrollmentSecret },
    });
    expect((await debFile(enrolledDeb, LAYOUT.enrollmentSecret)).trim()).toBe((await readFile(join(dir, 'secret'), 'utf8')).trim());
    const control = join(dir, 'control-enrolled');
    await ok('dpkg-deb', ['-e', enrolledDeb, control]);
    expect((await readFile(join(control, 'conffiles'), 'utf8')).trim().split('\n').sort()).toEqual([LAYOUT.enrollmentSecret, LAYOUT.enrollmentConfig, LAYOUT.autostart].sort());
  });

  it('has a unit that systemd-analyze verifies as installed, and an exposure score no worse than 4.7', async () => {
    const root = join(dir, 'unit-root');
    await ok('dpkg-deb', ['-x', plainDeb, root]);
    // The host's own units (sysinit.target, multi-user.target...) so that verify resolves the dependencies;
    // ExecStart then has to exist inside the root: the packaged node.
    await ok('cp', ['-an', '/lib/systemd/system/.', join(root, 'lib/systemd/system/')]);
    const verify = await sh('systemd-analyze', ['verify', `--root=${root}`, 'vigil.service']);
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stderr.trim()).toBe('');
    const security = await sh('systemd-analyze', ['security', '--offline=yes', join(root, LAYOUT.unitDeb)]);
    const score = Number(/Overall exposure level for vigil\.service: ([\d.]+)/.exec(security.stdout)?.[1]);
    expect(score).toBeLessThanOrEqual(4.7);
    const desktop = await sh('desktop-file-validate', [join(root, LAYOUT.autostart)]);
    expect(desktop.code, desktop.stdout + desktop.stderr).toBe(0);
    const entry = await readFile(join(root, LAYOUT.autostart), 'utf8');
    expect(entry).toContain(`Exec=${LAYOUT.tray} --hidden`);
    expect(entry).toContain(`TryExec=${LAYOUT.tray}`);
  });
});

describe.skipIf(!ready)('the .rpm', () => {
  it('carries the same tree with the unit under /usr/lib and the scriptlets', async () => {
    const info = await ok('rpm', ['-qpi', rpmFile]);
    expect(info).toMatch(/^Name\s+: vigil$/m);
    const list = await ok('rpm', ['-qp', '--qf', '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]', rpmFile]);
    expect(list).toContain(`-rwxr-xr-x root:root ${LAYOUT.node}`);
    expect(list).toContain(`-rwxr-xr-x root:root ${LAYOUT.wrapper}`);
    expect(list).toContain(`-rw-r--r-- root:root ${LAYOUT.unitRpm}`);
    expect(list).not.toContain('node_modules/electron/');
    const scripts = await ok('rpm', ['-qp', '--scripts', rpmFile]);
    for (const s of ['postinstall scriptlet', 'preuninstall scriptlet', 'postuninstall scriptlet']) expect(scripts).toContain(s);
    expect(await ok('rpm', ['-qpc', rpmFile])).toContain(LAYOUT.autostart);
  });
});

/** Copies a host program and the libraries it links into root, at the same paths. */
async function copyWithLibs(root: string, program: string): Promise<void> {
  const real = await realpath(program);
  const targets = [[program, real]];
  for (const m of (await ok('ldd', [real])).matchAll(/(\/\S+)/g)) if (m[1] !== undefined) targets.push([m[1], await realpath(m[1])]);
  for (const [at, from] of targets) {
    if (at === undefined || from === undefined || existsSync(join(root, at))) continue;
    await mkdir(dirname(join(root, at)), { recursive: true });
    await copyFile(from, join(root, at));
    await chmod(join(root, at), (await stat(from)).mode & 0o7777);
  }
}

/**
 * A throwaway root in which dpkg's maintainer scripts (chrooted by `dpkg --root`) and the agent run: this
 * host's sh and coreutils with their libraries, a root user, a machine-id, device nodes and an empty dpkg
 * database. The packaged node brings its own binary; its libraries (libc, libstdc++) come with the tools.
 */
async function throwawayRoot(root: string): Promise<void> {
  for (const d of ['var/lib/dpkg/updates', 'var/lib/dpkg/info', 'var/log', 'opt', 'etc', 'tmp', 'proc', 'sys', 'dev', 'run']) await mkdir(join(root, d), { recursive: true });
  await chmod(join(root, 'tmp'), 0o1777);
  await writeFile(join(root, 'var/lib/dpkg/status'), '');
  await writeFile(join(root, 'var/lib/dpkg/available'), '');
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  // What any Debian device has and the agent reads: the OS release (the scan needs it) and a machine ID.
  await mkdir(join(root, 'usr/lib'), { recursive: true });
  await copyFile('/usr/lib/os-release', join(root, 'usr/lib/os-release'));
  await copyFile('/usr/lib/os-release', join(root, 'etc/os-release'));
  await copyFile('/etc/machine-id', join(root, 'etc/machine-id')).catch(() => writeFile(join(root, 'etc/machine-id'), '0123456789abcdef0123456789abcdef\n'));
  for (const p of ['/bin/sh', '/usr/bin/install', '/bin/chown', '/bin/chmod', '/bin/rm', '/bin/rmdir', '/bin/mkdir', '/usr/bin/env']) await copyWithLibs(root, p);
  await copyWithLibs(root, process.execPath);
  for (const [name, minor] of [['null', 3], ['zero', 5], ['random', 8], ['urandom', 9]] as const) await ok('mknod', ['-m', '666', join(root, 'dev', name), 'c', '1', String(minor)]);
}

/** Every path under root, for before/after comparisons (dpkg's and rpm's own databases left out). */
async function tree(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const ent of await readdir(join(root, rel), { withFileTypes: true })) {
    const r = `${rel}/${ent.name}`;
    if (r.startsWith('/var/lib/dpkg') || r.startsWith('/var/lib/rpm') || r === '/proc' || r === '/sys') continue;
    out.push(r);
    if (ent.isDirectory()) out.push(...(await tree(root, r)));
  }
  return out.sort();
}

/** waitFor, with the service's output as it is when the wait fails (not when it began). */
async function waitService<T>(s: { output: () => string }, probe: () => Promise<T | undefined>, what: string): Promise<T> {
  try {
    return await waitFor(probe, 60_000, what);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${s.output()}`, { cause: err });
  }
}

/** The unit's ExecStart, run in the root the way systemd would start it (clean env, cwd /), with /proc and /sys. */
function startService(root: string, execStart: string[]): { child: ChildProcess; output: () => string } {
  const script = 'mount -t proc proc "$0/proc" && mount -t sysfs sysfs "$0/sys" && cd "$0" && exec chroot "$0" "$@"';
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, root, ...execStart], {
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

async function stopService(s: { child: ChildProcess }): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await exited;
}

describe.skipIf(!ready)('the hardening of the unit', () => {
  it('leaves every check its answer: a read-only root (ProtectSystem=strict, ProtectHome=read-only) scans as a writable one', async () => {
    const [rw, ro] = (await scans) ?? [];
    expect(rw?.code, rw?.stderr).toBe(0);
    expect(ro?.code, ro?.stderr).toBe(0);
    const answers = (o: Out | undefined): Record<string, string> =>
      Object.fromEntries((JSON.parse(o?.stdout ?? '{}') as { results: { id: string; status: string; reason: string }[] }).results.map((r) => [r.id, `${r.status}: ${r.reason}`]));
    const writable = answers(rw);
    expect(Object.keys(writable).length).toBeGreaterThan(5);
    expect(answers(ro)).toEqual(writable);
  }, 60_000);
});

describe.skipIf(!ready)('installed for real in a throwaway root', () => {
  it('installs with its scripts, enrolls and reports with no command typed, keeps its identity on upgrade, and purges to nothing', async () => {
    if (!cp) throw new Error('no control plane');
    const control = cp;
    const root = join(dir, 'root');
    await throwawayRoot(root);
    const before = await tree(root);
    const dpkg = (...args: string[]): Promise<Out> => sh('dpkg', [`--root=${root}`, '--force-depends', ...args]);

    const installed = await timed('dpkg -i', () => dpkg('-i', enrolledDeb));
    expect(installed.code, installed.stderr).toBe(0);
    const mode = async (p: string): Promise<string> => {
      const s = await stat(join(root, p));
      return `${(s.mode & 0o7777).toString(8)} ${s.uid}:${s.gid}`;
    };
    expect(await mode(LAYOUT.state)).toBe('700 0:0');
    expect(await mode(LAYOUT.logs)).toBe('700 0:0');
    expect(await mode(LAYOUT.enrollmentSecret)).toBe('600 0:0');
    expect(await mode(LAYOUT.managedDir)).toBe('755 0:0');

    const unit = await readFile(join(root, LAYOUT.unitDeb), 'utf8');
    const execStart = /^ExecStart=(.+)$/m.exec(unit)?.[1]?.split(' ') ?? [];
    expect(execStart[0]).toBe(LAYOUT.node);

    const reports = async (): Promise<{ id: string; count: number } | undefined> => {
      const devices = JSON.parse((await control.admin('GET', '/v1/admin/devices')).body) as { devices: { id: string }[] };
      const id = devices.devices[0]?.id;
      if (id === undefined) return undefined;
      const r = await control.admin('GET', `/v1/admin/devices/${id}/reports?limit=100`);
      return r.status === 200 ? { id, count: (JSON.parse(r.body) as { reports: unknown[] }).reports.length } : undefined;
    };

    let first = startService(root, execStart);
    let device: { id: string; count: number };
    try {
      device = await timed('enroll and first report', () =>
        waitService(first, async () => {
          const r = await reports();
          return r !== undefined && r.count > 0 ? r : undefined;
        }, 'the installed agent to enroll and report'),
      );
      expect(first.output()).toMatch(/enrolled with the enrollment secret/);
      expect(existsSync(join(root, '/run/vigil/agent.sock'))).toBe(true);
    } finally {
      await stopService(first);
    }
    const stateBefore = await tree(join(root, LAYOUT.state));
    expect(stateBefore.length).toBeGreaterThan(0);
    const enrollmentBefore = await readFile(join(root, LAYOUT.state, 'enrollment.json'), 'utf8').catch(() => '');

    // Upgrade: dpkg -i of the package over itself runs the upgrade path (prerm upgrade, postrm upgrade,
    // postinst configure <old version>), as a newer version would.
    const upgraded = await timed('dpkg -i (upgrade)', () => dpkg('-i', enrolledDeb));
    expect(upgraded.code, upgraded.stderr).toBe(0);
    expect(await tree(join(root, LAYOUT.state))).toEqual(stateBefore);
    expect(await readFile(join(root, LAYOUT.state, 'enrollment.json'), 'utf8').catch(() => '')).toBe(enrollmentBefore);
    first = startService(root, execStart);
    try {
      // The single-use secret is spent: reporting again proves the kept identity, not a new enrollment.
      await waitService(first, async () => ((await reports())?.count ?? 0) > device.count || undefined, 'a report after the upgrade');
      expect(first.output()).not.toMatch(/enrolled with the enrollment secret/);
      expect((await reports())?.id).toBe(device.id);
    } finally {
      await stopService(first);
    }

    const purged = await timed('dpkg -P', () => dpkg('-P', 'vigil'));
    expect(purged.code, purged.stderr).toBe(0);
    expect(await tree(root)).toEqual(before);
  }, 150_000);

  it('the .rpm: installs with its scriptlets, upgrades keeping state, erases to what the README says remains', async () => {
    const root = join(dir, 'rpm-root');
    await throwawayRoot(root);
    // systemd "running" in the root, with a systemctl that records what the scriptlets ask of it.
    await mkdir(join(root, 'run/systemd/system'), { recursive: true });
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await writeFile(join(root, 'usr/bin/systemctl'), '#!/bin/sh\necho "$*" >> /systemctl.log\n', { mode: 0o755 });
    const before = await tree(root);
    // Debian's rpm keeps its database under ~/.rpmdb: name one inside the root. No dependency is installed there.
    const rpm = (...args: string[]): Promise<Out> => sh('rpm', [`--root=${root}`, '--dbpath=/var/lib/rpm', ...args]);
    expect((await rpm('--initdb')).code).toBe(0);
    const systemctl = async (): Promise<string[]> => (await readFile(join(root, 'systemctl.log'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
    const mode = async (p: string): Promise<string> => {
      const st = await stat(join(root, p));
      return `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    };

    const installed = await timed('rpm -i', () => rpm('-i', '--nodeps', rpmFile));
    expect(installed.code, installed.stderr).toBe(0);
    expect((await rpm('-q', 'vigil')).stdout).toMatch(/^vigil-\d/);
    // %post ran: the directories it makes, and the service enabled and started.
    expect(await mode(LAYOUT.state)).toBe('700 0:0');
    expect(await mode(LAYOUT.logs)).toBe('700 0:0');
    expect(await mode(LAYOUT.managedDir)).toBe('755 0:0');
    expect(await mode(LAYOUT.node)).toBe('755 0:0');
    expect(await mode(LAYOUT.wrapper)).toBe('755 0:0');
    expect(await mode(LAYOUT.unitRpm)).toBe('644 0:0');
    expect(await systemctl()).toEqual(['daemon-reload', 'enable vigil.service', 'start vigil.service']);
    const verified = await rpm('-V', '--nodeps', 'vigil');
    expect(verified.code, verified.stdout).toBe(0);

    // What the device gathered, and a config file an admin edited.
    await writeFile(join(root, LAYOUT.state, 'identity.json'), '{}\n', { mode: 0o600 });
    await writeFile(join(root, LAYOUT.autostart), `${await readFile(join(root, LAYOUT.autostart), 'utf8')}# edited here\n`);

    // Upgrade: -U --replacepkgs of the same package runs the upgrade path ($1 = 2 in %post, then the old
    // package's %preun/%postun with $1 = 1), as a newer version would, without a second 10 s build.
    const upgraded = await timed('rpm -U (upgrade)', () => rpm('-U', '--replacepkgs', '--nodeps', rpmFile));
    expect(upgraded.code, upgraded.stderr).toBe(0);
    expect((await systemctl()).slice(3)).toEqual(['daemon-reload', 'enable vigil.service', 'restart vigil.service', 'daemon-reload']);
    expect(await readFile(join(root, LAYOUT.state, 'identity.json'), 'utf8')).toBe('{}\n');
    expect(await readFile(join(root, LAYOUT.autostart), 'utf8')).toContain('# edited here');

    // Erase: the service stopped and disabled, state and logs gone (rpm has no purge), the edited config kept
    // as .rpmsave; what else remains is the directories a real system's filesystem package owns.
    const erased = await timed('rpm -e', () => rpm('-e', 'vigil'));
    expect(erased.code, erased.stderr).toBe(0);
    expect((await systemctl()).slice(7)).toEqual(['disable --now vigil.service', 'daemon-reload']);
    expect((await rpm('-q', 'vigil')).code).not.toBe(0);
    const after = await tree(root);
    expect(after.filter((p) => !before.includes(p))).toEqual(
      ['/etc/xdg', '/etc/xdg/autostart', `${LAYOUT.autostart}.rpmsave`, '/systemctl.log', '/usr/lib/systemd', '/usr/lib/systemd/system', '/var/tmp'].sort(),
    );
    expect(before.filter((p) => !after.includes(p))).toEqual([]);
  }, 90_000);
});

// Last, so lintian (about 45 s on two CPUs) overlaps the real install above rather than delaying it.
describe.skipIf(!ready)('lintian', () => {
  it('is lintian clean (overrides are in the package, each with its reason)', async () => {
    const r = await lintian;
    const findings = (r?.stdout ?? '').split('\n').filter((l) => /^[EWIXOP]: /.test(l));
    expect(findings, r?.stdout).toEqual([]);
    expect(r?.code, r?.stderr).toBe(0);
  }, 120_000);
});

describe.skipIf(!existsSync(CONTROL_PLANE_CLI))('vigil-control-plane package, refusing before it builds anything', () => {
  const pkg = (...args: string[]): Promise<Out> => sh(process.execPath, [CONTROL_PLANE_CLI, 'package', '--target', 'deb', '--out', join(tmpdir(), 'vigil-never'), ...args]);

  it('without a secret', async () => {
    const r = await pkg('--ca-url', 'https://ca.example.com', '--ca-root', '/nonexistent', '--control-plane-url', 'https://cp.example.com');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--enrollment-secret or --enrollment-secret-file is required');
  });

  it('when the server listens on a wildcard address and no --control-plane-url names it', async () => {
    const d = await mkdtemp(join(tmpdir(), 'vigil-pkg-cfg-'));
    try {
      await writeFile(join(d, 'serve.json'), JSON.stringify({ listen: '0.0.0.0:8443', caUrl: 'https://ca.example.com', caRoot: join(d, 'root.crt') }));
      const r = await pkg('--config', join(d, 'serve.json'), '--enrollment-secret', 's3cret');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('--control-plane-url is required');
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});
