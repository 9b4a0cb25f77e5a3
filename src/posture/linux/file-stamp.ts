import { stat } from 'node:fs/promises';
import type { CollectContext } from '../collector.js';

/** What a stat says about a file's content without reading it. */
export interface FileStamp {
  mtimeMs: number;
  size: number;
  ino: number;
}

/**
 * A file's stamp, shared by every check of one scan; null when the file does not exist or cannot be seen.
 * A writer changes mtime (or size), and a replacement by rename (dpkg, logrotate) changes the inode, so an
 * unchanged stamp is what the caches keyed by it rely on.
 */
export function fileStamp(ctx: Pick<CollectContext, 'facts'>, path: string): Promise<FileStamp | null> {
  return ctx.facts.scan(`linux.stamp:${path}`, () =>
    stat(path).then(
      (s) => ({ mtimeMs: s.mtimeMs, size: s.size, ino: s.ino }),
      () => null,
    ),
  );
}

/** A stamp as a cache version: equal strings mean no change seen. */
export function stampVersion(s: FileStamp | null): string {
  return s === null ? 'absent' : `${s.ino}:${s.size}:${s.mtimeMs}`;
}
