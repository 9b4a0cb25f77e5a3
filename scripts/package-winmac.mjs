// Builds the Windows .msi or the macOS .pkg inputs from the compiled src/installers (run `npm run build` first):
//   node scripts/package-winmac.mjs --target msi|pkg [--input build/installer-input] [--out dist-installers]
//     [--control-plane URL] [--ca-url URL] [--fingerprint SHA256] [--enrollment-secret-file FILE]
// The lead joins this with the Linux targets under `npm run package -- --target ...`.
import { packageInstaller, parsePackageArgs, PackageUsageError } from '../dist/src/installers/index.js';
import { EnrollmentInputError } from '../dist/src/installers/enrollment.js';
import { MsiBuildError } from '../dist/src/installers/msi.js';
import { PkgBuildError } from '../dist/src/installers/pkg.js';

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
