import { writeSync } from 'node:fs';
import { Outbox } from '../../src/reporting/outbox.js';
import { sampleReport } from '../helpers/report.js';

/**
 * Appends reports as fast as it can and prints a line only after append() resolved (the durability
 * promise) and before each ack() starts, until the parent SIGKILLs it.
 */
const dir = process.argv[2];
if (!dir) throw new Error('usage: outbox-child <dir>');
const box = await Outbox.open(dir, { maxEntries: 100_000, maxBytes: 1024 * 1024 * 1024 });
const report = sampleReport();
writeSync(1, `ready ${box.stats().nextSeq}\n`);
for (let i = 0; ; i++) {
  const env = await box.append(report);
  writeSync(1, `appended ${env.seq} ${env.reportId}\n`);
  if (i % 3 === 0) {
    // Announced before: once an ack has started the report may be gone, as after a real delivery.
    writeSync(1, `acking ${env.seq} ${env.reportId}\n`);
    await box.ack(env.reportId);
  }
}
