import { PgStorage } from './pg-storage.js';
import { SqliteStorage, type SqliteStorageOptions } from './sqlite-storage.js';
import type { Storage } from './storage.js';

export const STORAGE_BACKENDS = ['sqlite', 'postgres'] as const;
export type StorageBackend = (typeof STORAGE_BACKENDS)[number];

export interface StorageConfig {
  backend: StorageBackend;
  /** SQLite: the directory holding control-plane.sqlite. */
  dataDir?: string;
  /** PostgreSQL: a connection URL. */
  database?: string;
  sqlite?: SqliteStorageOptions;
}

/** Opens the configured backend; the one place that knows the implementations. */
export function openStorage(c: StorageConfig): Promise<Storage> {
  if (c.backend === 'sqlite') {
    if (c.dataDir === undefined || c.dataDir === '') return Promise.reject(new Error('storage: the sqlite backend needs dataDir'));
    return Promise.resolve(new SqliteStorage(c.dataDir, c.sqlite));
  }
  if (c.database === undefined || c.database === '') return Promise.reject(new Error('storage: the postgres backend needs database (a postgres:// URL)'));
  return PgStorage.open(c.database);
}
