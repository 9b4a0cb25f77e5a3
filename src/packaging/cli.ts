#!/usr/bin/env node
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { buildLinuxPackage, defaultRoot, type LinuxTarget } from './linux.js';

/** `npm run package -- --target deb|rpm [--out DIR]`: the agent's Linux package, from the build in dist/. */
const program = new Command('package')
  .description('build the Linux agent package from dist/ (run `npm run build` first)')
  .addOption(new Option('--target <target>', 'package format').choices(['deb', 'rpm']).makeOptionMandatory())
  .option('--out <dir>', 'where the package goes', 'dist/packages')
  .action(async (flags: { target: LinuxTarget; out: string }) => {
    const started = Date.now();
    const out = await buildLinuxPackage({ target: flags.target, outDir: resolve(flags.out), root: defaultRoot() });
    process.stdout.write(`${out} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`package: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
