import { writeSync } from 'node:fs';
import { startLocalApiServer } from '../../src/agent/local-api-server.js';
import { silentLogger } from '../../src/logging/logger.js';
import { FakeBackend } from './local-api-fixtures.js';

/** A local API server in its own process, so a test can SIGKILL it and leave its socket file behind. */
const [address] = process.argv.slice(2);
if (!address) throw new Error('usage: local-api-server-child <socket path>');
const backend = new FakeBackend();
await startLocalApiServer({ address, backend, logger: silentLogger(), agentVersion: `child-${process.pid}` });
writeSync(1, 'listening\n');
// Keeps subscribers busy, so a kill lands while events are in flight.
setInterval(() => { backend.change({ scanning: !backend.current.scanning }); }, 50);
