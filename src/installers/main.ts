/**
 * `node dist/src/installers/main.js --target msi|pkg [flags]` (after `npm run build`): the Windows and macOS
 * installers with enrollment baked in from flags (`vigil enroll`'s names), for a build machine that has no
 * control-plane config; `npm run package -- --target msi|pkg` builds them plain, and `vigil-control-plane
 * package` bakes in its own server's values. TypeScript rather than a scripts/*.mjs so that it is type-checked
 * with the rest (ESLint's default project for loose .mjs files is capped at 8 files, all used).
 */
import { EnrollmentInputError } from './enrollment.js';
import { packageInstaller, parsePackageArgs, PackageUsageError } from './index.js';
import { MsiBuildError } from './msi.js';
import { PkgBuildError } from './pkg.js';

try {
  const result = await packageInstaller(await parsePackageArgs(process.argv.slice(2)));
  process.stdout.write(`${result.artifact}\nnext: ${result.next}\n`);
} catch (e) {
  // Known failures are one line naming the input; anything else is a bug and keeps its stack.
  if (e instanceof PackageUsageError || e instanceof EnrollmentInputError || e instanceof MsiBuildError || e instanceof PkgBuildError) {
    process.stderr.write(`package: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
