import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AGENT_VERSION } from '../version.js';
import type { EnrollmentInput } from './enrollment.js';
import { buildMsi } from './msi.js';
import { buildPkg } from './pkg.js';

/**
 * One entry point for the Windows and macOS installers, for `npm run package -- --target msi|pkg` and
 * `vigil-control-plane package --target msi|pkg --enrollment-secret S` to call.
 *
 * The build input directory (default build/installer-input, not committed) holds what cannot come from
 * this repository's own build; README "Installing on Windows and macOS (MDM)" says how to fill it:
 *
 *   win-x64/node.exe      Node 20 for Windows x64
 *   win-x64/winsw.exe     WinSW, the service wrapper
 *   win-x64/app/          package.json, dist/, production node_modules installed on Windows
 *   win-x64/tray/         optional: electron-builder's win-unpacked (Vigil.exe)
 *   darwin/node           Node 20 for macOS
 *   darwin/app/           package.json, dist/, production node_modules installed on a Mac
 *   darwin/Vigil.app/     optional: electron-builder's mac app
 */
export type InstallerTarget = 'msi' | 'pkg';

export const DEFAULT_INPUT_DIR = 'build/installer-input';

export interface PackageOptions {
  target: InstallerTarget;
  inputDir?: string;
  outDir: string;
  version?: string;
  enrollment?: EnrollmentInput;
  /** Tests only: accept placeholder runtimes; the artifact's name then says it is not installable. */
  allowPlaceholders?: boolean;
}

export interface PackageResult {
  target: InstallerTarget;
  /** The .msi or the .pkg. */
  artifact: string;
  /** What is left to do, in one line. */
  next: string;
}

export async function packageInstaller(o: PackageOptions): Promise<PackageResult> {
  const input = resolve(o.inputDir ?? DEFAULT_INPUT_DIR);
  const version = o.version ?? AGENT_VERSION;
  const common = { version, ...(o.enrollment ? { enrollment: o.enrollment } : {}), ...(o.allowPlaceholders ? { allowPlaceholders: true } : {}) };
  if (o.target === 'msi') {
    const win = join(input, 'win-x64');
    const tray = join(win, 'tray');
    const artifact = await buildMsi({
      input: { nodeExe: join(win, 'node.exe'), serviceWrapperExe: join(win, 'winsw.exe'), appDir: join(win, 'app'), ...(existsSync(tray) ? { trayDir: tray } : {}) },
      outFile: join(resolve(o.outDir), `vigil-${version}-x64.msi`),
      ...common,
    });
    return { target: 'msi', artifact, next: 'sign it (osslsigncode sign ... -in vigil.msi -out vigil-signed.msi) and deploy with msiexec /i ... /qn' };
  }
  const mac = join(input, 'darwin');
  const trayApp = join(mac, 'Vigil.app');
  const artifact = await buildPkg({
    input: { nodeBin: join(mac, 'node'), appDir: join(mac, 'app'), ...(existsSync(trayApp) ? { trayApp } : {}) },
    outFile: join(resolve(o.outDir), `vigil-${version}.pkg`),
    ...common,
  });
  return { target: 'pkg', artifact, next: 'on a Mac: productsign --sign "Developer ID Installer: ..." vigil.pkg vigil-signed.pkg, notarize it, then deploy it with the MDM' };
}

export class PackageUsageError extends Error {}

/**
 * `--target msi|pkg [--input DIR] [--out DIR] [--version V] [--control-plane URL] [--ca-url URL]
 * [--fingerprint SHA256] [--enrollment-secret S | --enrollment-secret-file F]`. The flag names are
 * `vigil enroll`'s. A secret on a command line is visible to other local users while it runs, hence the file form.
 */
export async function parsePackageArgs(argv: readonly string[]): Promise<PackageOptions> {
  const options = {
    target: { type: 'string' },
    input: { type: 'string' },
    out: { type: 'string', default: 'dist-installers' },
    version: { type: 'string' },
    'control-plane': { type: 'string' },
    'ca-url': { type: 'string' },
    fingerprint: { type: 'string' },
    'enrollment-secret': { type: 'string' },
    'enrollment-secret-file': { type: 'string' },
  } as const;
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true });
  } catch (e) {
    // Unknown flags and missing values, as one usage line.
    throw new PackageUsageError(e instanceof Error ? e.message : String(e));
  }
  const { values } = parsed;
  const target = values.target;
  if (target !== 'msi' && target !== 'pkg') throw new PackageUsageError(`--target: expected msi or pkg, got ${target ?? 'nothing'}`);
  if (values['enrollment-secret'] !== undefined && values['enrollment-secret-file'] !== undefined) {
    throw new PackageUsageError('--enrollment-secret and --enrollment-secret-file: give one');
  }
  const fileSecret = values['enrollment-secret-file'] !== undefined ? (await readFile(values['enrollment-secret-file'], 'utf8')).trim() : undefined;
  const secret = values['enrollment-secret'] ?? fileSecret;
  const enrollment: EnrollmentInput = {
    ...(values['control-plane'] !== undefined ? { controlPlaneUrl: values['control-plane'] } : {}),
    ...(values['ca-url'] !== undefined ? { caUrl: values['ca-url'] } : {}),
    ...(values.fingerprint !== undefined ? { fingerprint: values.fingerprint } : {}),
    ...(secret !== undefined ? { enrollmentSecret: secret } : {}),
  };
  return {
    target,
    outDir: values.out,
    ...(values.input !== undefined ? { inputDir: values.input } : {}),
    ...(values.version !== undefined ? { version: values.version } : {}),
    ...(Object.keys(enrollment).length > 0 ? { enrollment } : {}),
  };
}
