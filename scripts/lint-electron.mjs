// Runs @doyensec/electronegativity over electron/ and fails on any finding that is not a reviewed
// exception (electron/electronegativity-exceptions.json), or on an exception that matches nothing.
// Its CLI does not start with the commander version npm hoists here, so this calls its runner directly.
// Usage: node scripts/lint-electron.mjs [--input <dir>] [--exceptions <file>] [--skip-release-check]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    input: { type: 'string', default: 'electron' },
    exceptions: { type: 'string', default: 'electron/electronegativity-exceptions.json' },
    'skip-release-check': { type: 'boolean', default: false },
  },
});
const require = createRequire(import.meta.url);
const run = require('@doyensec/electronegativity/dist/runner.js');
const electronVersion = require('electron/package.json').version;
const { exceptions } = JSON.parse(readFileSync(values.exceptions, 'utf8'));

const result = await run(
  {
    input: resolve(values.input),
    customScan: [],
    // The release check asks the network which Electron versions exist; tests of this script skip it.
    excludeFromScan: values['skip-release-check'] ? ['availablesecurityfixesglobalcheck'] : [],
    isRelative: true,
    isVerbose: false,
    electronVersionOverride: electronVersion,
    parserPlugins: [],
  },
  false,
);

let failed = false;
for (const e of result.errors) {
  console.error(`electronegativity could not parse ${e.file}: ${e.message}`);
  failed = true;
}
const used = new Set();
for (const issue of result.issues) {
  const where = `${issue.file}:${issue.location.line}:${issue.location.column}`;
  const ex = exceptions.find((x) => x.id === issue.id && x.file === issue.file);
  if (ex) {
    used.add(ex);
    console.log(`accepted  ${issue.id} at ${where}: ${ex.reason}`);
  } else {
    console.error(`FINDING   ${issue.id} (${issue.severity.name}, ${issue.confidence.name}) at ${where}: ${issue.description} ${issue.shortenedURL}`);
    failed = true;
  }
}
for (const ex of exceptions) {
  if (!used.has(ex)) {
    console.error(`STALE     exception ${ex.id} in ${ex.file} matches no finding; remove it from ${values.exceptions}`);
    failed = true;
  }
}
console.log(
  `electronegativity ${result.globalChecks + result.atomicChecks} checks on ${values.input}: ${result.issues.length - used.size} unreviewed finding(s), ${used.size} reviewed exception(s)`,
);
process.exitCode = failed ? 1 : 0;
