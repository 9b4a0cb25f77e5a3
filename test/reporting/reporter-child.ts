import { readFile } from 'node:fs/promises';
import { writeSync } from 'node:fs';
import { silentLogger } from '../../src/logging/logger.js';
import { Outbox } from '../../src/reporting/outbox.js';
import { Reporter } from '../../src/reporting/reporter.js';
import { sampleReport } from '../helpers/report.js';

/** A reporter in its own process, so the test can SIGKILL it mid-send. Prints what it did, line by line. */
const [dir, baseUrl, certFile, keyFile, rootFile, countArg] = process.argv.slice(2);
if (!dir || !baseUrl || !certFile || !keyFile || !rootFile) throw new Error('usage: reporter-child dir url cert key root count');
const [cert, key, ca] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8'), readFile(rootFile, 'utf8')]);
const outbox = await Outbox.open(dir);
for (let i = 0; i < Number(countArg ?? 0); i++) {
  const env = await outbox.append(sampleReport());
  writeSync(1, `appended ${env.seq} ${env.reportId}\n`);
}
const reporter = new Reporter({
  baseUrl,
  outbox,
  identity: { current: () => Promise.resolve({ cert, key, ca }) },
  logger: silentLogger(),
  scan: () => Promise.resolve(sampleReport()),
  policyVersion: () => '2026.11.1',
  applyPolicy: () => Promise.resolve(),
  onDelivered: (ack) => {
    writeSync(1, `delivered ${ack.reportId} ${ack.duplicate}\n`);
  },
  directiveStream: false,
  backoff: { baseMs: 50, capMs: 200 },
});
reporter.start();
const timer = setInterval(() => {
  if (outbox.stats().entries === 0) {
    clearInterval(timer);
    writeSync(1, 'drained\n');
    void reporter.stop().then(() => process.exit(0));
  }
}, 20);
