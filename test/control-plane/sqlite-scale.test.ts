import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStorage } from '../../src/control-plane/sqlite-storage.js';
import { storageScaleContract } from './storage-scale-contract.js';

storageScaleContract('SqliteStorage', async () => new SqliteStorage(await mkdtemp(join(tmpdir(), 'vigil-scale-'))));
