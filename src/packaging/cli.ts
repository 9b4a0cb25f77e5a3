#!/usr/bin/env node
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_INPUT_DIR, packageInstaller, type InstallerTarget } from '../installers/index.js';
import { buildLinuxPackage, defaultRoot, type LinuxTarget } from './linux.js';

/**
 * `npm run package -- --target deb|rpm|msi|pkg [--out DIR]`: the agent's installer. Linux packages are built
 * from dist/ on this machine; the .msi and the .pkg from the Windows and macOS builds placed under
 * --input (build/installer-input by default; see README, Installing on Windows and macOS).
 */
const program = new Command('package')
  .description('build the agent installer (run `npm run build` first)')
  .addOption(new Option('--target <target>', 'installer format').choices(['deb', 'rpm', 'msi', 'pkg']).makeOptionMandatory())
  .option('--out <dir>', 'where the installer goes', 'dist/packages')
  .option('--input <dir>', 'msi/pkg: the Windows or macOS build inputs', DEFAULT_INPUT_DIR)
  .action(async (flags: { target: LinuxTarget | InstallerTarget; out: string; input: string }) => {
    const started = Date.now();
    const took = (): string => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    if (flags.target === 'msi' || flags.target === 'pkg') {
      const result = await packageInstaller({ target: flags.target, inputDir: flags.input, outDir: resolve(flags.out) });
      process.stdout.write(`${result.artifact} (${took()})\nnext: ${result.next}\n`);
      return;
    }
    const out = await buildLinuxPackage({ target: flags.target, outDir: resolve(flags.out), root: defaultRoot() });
    process.stdout.write(`${out} (${took()})\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`package: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
