import { execFile } from 'node:child_process';
import { lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPkgInputs, plist, SECRET_FILE } from '../../src/installers/pkg.js';

const run = promisify(execFile);

/**
 * Runs the package's preinstall/postinstall the way Installer does (as root, `$3` the target volume),
 * against the payload laid out in a chroot, so their absolute /Library paths never touch this machine.
 * The chroot gets this machine's /usr read-only (Debian's merged /bin and /lib point into it) in a private
 * mount namespace, and stubs for what only macOS has: launchctl records its arguments, stat answers the
 * console user as `stat -f %Su /dev/console` does, id answers a uid, chown records (Debian has no wheel group).
 */

let dir: string;
let out: string;

async function chrootRun(script: 'preinstall' | 'postinstall', consoleUser: string, volume = '/'): Promise<{ root: string; launchctl: string[]; chown: string[] }> {
  const root = await mkdtemp(join(dir, 'root-'));
  await cp(join(out, 'root'), root, { recursive: true, verbatimSymlinks: true });
  await cp(join(out, 'scripts'), join(root, 'scripts'), { recursive: true });
  for (const [link, target] of [['bin', 'usr/bin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['sbin', 'usr/sbin']] as const) await symlink(target, join(root, link));
  await mkdir(join(root, 'usr'));
  await mkdir(join(root, 'dev'));
  await mkdir(join(root, 'tmp'));
  await mkdir(join(root, 'stub'));
  const stubs: Record<string, string> = {
    // bootout of a service that is not loaded fails on macOS (exit 3 or 113): the scripts must not stop there.
    launchctl: 'echo "$*" >> /launchctl.log\ncase "$1" in bootout) exit 3;; esac\nexit 0',
    stat: 'echo "$CONSOLE_USER"',
    id: 'echo 501',
    chown: 'echo "$*" >> /chown.log',
  };
  for (const [name, body] of Object.entries(stubs)) await writeFile(join(root, 'stub', name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  const inner = `env -i PATH=/stub:/usr/bin:/bin:/usr/sbin:/sbin CONSOLE_USER=${consoleUser} /bin/sh /scripts/${script} /tmp/vigil.pkg / ${volume} /`;
  // /usr/local gets a tmpfs of its own: postinstall links /usr/local/bin/vigil, and the host's stays untouched.
  await run('unshare', ['-m', 'sh', '-c', `mount --bind /usr "${root}/usr" && mount -o remount,bind,ro "${root}/usr" && mount -t tmpfs tmpfs "${root}/usr/local" && { chroot "${root}" ${inner}; echo $? > "${root}/exit-code"; cp -P "${root}/usr/local/bin/vigil" "${root}/vigil-link" 2>/dev/null; true; }`]);
  // Installer fails the install when a script exits non-zero: each run here must exit 0.
  expect(readFileSync(join(root, 'exit-code'), 'utf8').trim(), `${script} exit code`).toBe('0');
  const lines = (f: string): string[] => {
    try {
      return readFileSync(join(root, f), 'utf8').split('\n').filter((l) => l !== '');
    } catch {
      return [];
    }
  };
  return { root, launchctl: lines('launchctl.log'), chown: lines('chown.log') };
}

let canChroot = false;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-pkg-scripts-'));
  const app = join(dir, 'app');
  await mkdir(join(app, 'dist', 'src', 'cli'), { recursive: true });
  await writeFile(join(app, 'package.json'), '{}\n');
  await writeFile(join(app, 'dist', 'src', 'cli', 'main.js'), '// cli\n');
  const trayApp = join(dir, 'Vigil.app');
  await mkdir(join(trayApp, 'Contents', 'MacOS'), { recursive: true });
  await writeFile(join(trayApp, 'Contents', 'MacOS', 'Vigil'), 'PLACEHOLDER tray\n');
  await writeFile(join(trayApp, 'Contents', 'Info.plist'), plist({ CFBundleIdentifier: 'dev.vigil.tray.app', CFBundleShortVersionString: '1.0.0', CFBundleVersion: '1.0.0' }));
  await writeFile(join(dir, 'PLACEHOLDER-node'), 'PLACEHOLDER node\n');
  out = join(dir, 'out');
  await buildPkgInputs({ input: { nodeBin: join(dir, 'PLACEHOLDER-node'), appDir: app, trayApp }, outDir: out, enrollment: { enrollmentSecret: 'vigil_ab12_c2VjcmV0LXNlY3JldA' }, allowPlaceholders: true });
  // A private mount namespace needs root (CI and these machines run tests as root).
  canChroot = await run('unshare', ['-m', 'true']).then(() => true, () => false);
});

afterAll(async () => {
  // The mounts lived in the unshare'd namespace only: nothing is mounted here any more when this runs.
  await rm(dir, { recursive: true, force: true });
});

describe('the macOS install scripts, run in a chroot with launchctl stubbed', () => {
  it('postinstall: sets modes, links the CLI, bootstraps the daemon then the console user\'s tray', async (ctx) => {
    if (!canChroot) ctx.skip();
    const { root, launchctl, chown } = await chrootRun('postinstall', 'alice');
    expect(launchctl).toEqual([
      'bootout system/dev.vigil.agent',
      'enable system/dev.vigil.agent',
      'bootstrap system /Library/LaunchDaemons/dev.vigil.agent.plist',
      'bootout gui/501/dev.vigil.tray',
      'bootstrap gui/501 /Library/LaunchAgents/dev.vigil.tray.plist',
    ]);
    expect(chown).toEqual(expect.arrayContaining(['-R root:wheel /Library/Vigil', 'root:admin /Library/Logs/Vigil', `root:wheel ${SECRET_FILE}`]));
    expect(statSync(join(root, 'Library/Application Support/Vigil/state')).mode & 0o777).toBe(0o700);
    expect(statSync(join(root, 'Library/Logs/Vigil')).mode & 0o777).toBe(0o750);
    expect(statSync(join(root, SECRET_FILE)).mode & 0o777).toBe(0o600);
    expect(lstatSync(join(root, 'vigil-link')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(root, 'vigil-link'))).toBe('/Library/Vigil/bin/vigil');
  });

  it('postinstall at the login window: the daemon only; the tray waits for a login', async (ctx) => {
    if (!canChroot) ctx.skip();
    const { launchctl } = await chrootRun('postinstall', 'loginwindow');
    expect(launchctl).toEqual(['bootout system/dev.vigil.agent', 'enable system/dev.vigil.agent', 'bootstrap system /Library/LaunchDaemons/dev.vigil.agent.plist']);
  });

  it('on another volume than the startup disk, neither script touches this system\'s services', async (ctx) => {
    if (!canChroot) ctx.skip();
    expect((await chrootRun('postinstall', 'alice', '/Volumes/Other')).launchctl).toEqual([]);
    expect((await chrootRun('preinstall', 'alice', '/Volumes/Other')).launchctl).toEqual([]);
  });

  it('preinstall: stops the daemon and the console user\'s tray before files are replaced', async (ctx) => {
    if (!canChroot) ctx.skip();
    expect((await chrootRun('preinstall', 'alice')).launchctl).toEqual(['bootout system/dev.vigil.agent', 'bootout gui/501/dev.vigil.tray']);
  });
});
