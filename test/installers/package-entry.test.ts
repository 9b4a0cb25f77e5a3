import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';
import { packageInstaller, PackageUsageError, parsePackageArgs } from '../../src/installers/index.js';

const run = promisify(execFile);

/** The entry point the lead wires to `--target msi|pkg`: flags, the build input layout, both targets. */

let dir: string;
let input: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-package-entry-'));
  input = join(dir, 'input');
  for (const os of ['win-x64', 'darwin']) {
    await mkdir(join(input, os, 'app', 'dist', 'src', 'cli'), { recursive: true });
    await writeFile(join(input, os, 'app', 'package.json'), '{}\n');
    await writeFile(join(input, os, 'app', 'dist', 'src', 'cli', 'main.js'), '// cli\n');
  }
  await writeFile(join(input, 'win-x64', 'node.exe'), 'PLACEHOLDER node.exe\n');
  await writeFile(join(input, 'win-x64', 'winsw.exe'), 'PLACEHOLDER winsw.exe\n');
  await writeFile(join(input, 'darwin', 'node'), 'PLACEHOLDER node\n');
  // An input whose node has the Mach-O magic, so the CLI (which has no placeholder flag) accepts it.
  await cp(input, join(dir, 'mac-input'), { recursive: true });
  await writeFile(join(dir, 'mac-input', 'darwin', 'node'), Buffer.from([0xcf, 0xfa, 0xed, 0xfe]));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('packageInstaller and its flags', () => {
  it('parses the flags `vigil-control-plane package` would pass, the secret from a file too', async () => {
    const secretFile = join(dir, 'secret');
    await writeFile(secretFile, 'vigil_ab12_c2VjcmV0LXNlY3JldA\n');
    expect(await parsePackageArgs(['--target', 'msi', '--control-plane', 'https://cp.example.com', '--ca-url', 'https://ca.example.com', '--fingerprint', 'ab'.repeat(32), '--enrollment-secret-file', secretFile])).toEqual({
      target: 'msi',
      outDir: 'dist-installers',
      enrollment: { controlPlaneUrl: 'https://cp.example.com', caUrl: 'https://ca.example.com', fingerprint: 'ab'.repeat(32), enrollmentSecret: 'vigil_ab12_c2VjcmV0LXNlY3JldA' },
    });
    expect(await parsePackageArgs(['--target', 'pkg', '--input', 'in', '--out', 'o', '--version', '2.0.0'])).toEqual({ target: 'pkg', inputDir: 'in', outDir: 'o', version: '2.0.0' });
    await expect(parsePackageArgs(['--target', 'deb'])).rejects.toThrow(PackageUsageError);
    await expect(parsePackageArgs(['--target', 'msi', '--bogus'])).rejects.toThrow(PackageUsageError);
    await expect(parsePackageArgs(['--target', 'msi', '--enrollment-secret', 'x', '--enrollment-secret-file', secretFile])).rejects.toThrow(/give one/);
  });

  it('builds the MSI from win-x64/ of the input dir, with the secret baked in', async () => {
    const r = await packageInstaller({ target: 'msi', inputDir: input, outDir: join(dir, 'out'), version: '0.9.1', enrollment: { enrollmentSecret: 'vigil_ab12_c2VjcmV0LXNlY3JldA' }, allowPlaceholders: true });
    expect(r.artifact).toBe(join(dir, 'out', 'vigil-0.9.1-x64.msi'));
    const { stdout } = await run('msiinfo', ['export', r.artifact, 'Property']);
    expect(stdout).toMatch(/^ENROLLMENT_SECRET\tvigil_ab12_c2VjcmV0LXNlY3JldA$/m);
  }, 60_000);

  it('builds the .pkg from darwin/ of the input dir', async () => {
    const r = await packageInstaller({ target: 'pkg', inputDir: input, outDir: join(dir, 'out'), version: '0.9.1', allowPlaceholders: true });
    expect(r.artifact).toBe(join(dir, 'out', 'vigil-0.9.1.pkg'));
    const { stdout } = await run('bsdtar', ['-tf', r.artifact]);
    expect(stdout).toContain('vigil.pkg/Payload\n');
    expect(r.next).toMatch(/productsign/);
  });

  it('main.ts: one line and exit 2 for a bad flag or input; the artifact path and what is next on success', async () => {
    // tsx runs the TypeScript entry as node runs the built one.
    const tsx = join(ROOT, 'node_modules', '.bin', 'tsx');
    const main = join(ROOT, 'src', 'installers', 'main.ts');
    await expect(run(tsx, [main, '--target', 'zip'])).rejects.toMatchObject({ code: 2, stderr: 'package: --target: expected msi or pkg, got zip\n' });
    await expect(run(tsx, [main, '--target', 'msi', '--input', input, '--out', join(dir, 'cli-out')])).rejects.toMatchObject({ code: 2 });
    const ok = await run(tsx, [main, '--target', 'pkg', '--input', join(dir, 'mac-input'), '--out', join(dir, 'cli-out'), '--version', '0.9.2']);
    expect(ok.stdout).toBe(`${join(dir, 'cli-out', 'vigil-0.9.2.pkg')}\nnext: on a Mac: productsign --sign "Developer ID Installer: ..." vigil.pkg vigil-signed.pkg, notarize it, then deploy it with the MDM\n`);
    expect(existsSync(join(dir, 'cli-out', 'vigil-0.9.2.pkg'))).toBe(true);
  }, 60_000);

  it('names the missing input', async () => {
    await expect(packageInstaller({ target: 'msi', inputDir: join(dir, 'empty'), outDir: join(dir, 'out') })).rejects.toThrow(/node\.exe: .*win-x64\/node\.exe is not a file/);
  });
});
