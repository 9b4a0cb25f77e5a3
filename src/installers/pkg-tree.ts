import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * One entry of a directory tree as a flat package records it: in the Payload (cpio) and in the Bom. Paths
 * are relative and start with "." as pkgbuild writes them ("." for the root, "./Library/Vigil/node"). The
 * owner is always root (uid 0) whoever built the tree: Installer applies the archive's owners, and a build
 * user's uid must never end up owning /Library/Vigil on a Mac.
 */
export interface TreeEntry {
  /** "." or "./a/b". */
  path: string;
  /** Where the bytes are on this machine. */
  abs: string;
  kind: 'dir' | 'file' | 'symlink';
  /** Permission bits only (0o7777); the type bits come from kind. */
  perm: number;
  /** Bytes of a file, or the length of a symlink's target; 0 for a directory. */
  size: number;
  /** 0 (wheel) unless the package says otherwise (macOS's /Applications is root:admin, 80). */
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** A symlink's target, as written (relative targets stay relative). */
  linkTarget?: string;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/** The full st_mode: type bits and permissions, as cpio and the Bom store it. */
export function fullMode(e: TreeEntry): number {
  return (e.kind === 'dir' ? S_IFDIR : e.kind === 'symlink' ? S_IFLNK : S_IFREG) | e.perm;
}

/**
 * Walks root depth-first, parents before their children, siblings in byte order of their names, so the
 * archives are the same for the same tree. Anything other than a directory, a file or a symlink (a socket
 * or a fifo left in an app tree) is refused by name: neither Installer nor this writer has a use for it.
 */
export async function walkTree(root: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const visit = async (abs: string, path: string): Promise<void> => {
    const st = await lstat(abs);
    const base = { path, abs, perm: st.mode & 0o7777, gid: 0, mtime: Math.floor(st.mtimeMs / 1000) };
    if (st.isSymbolicLink()) {
      const linkTarget = await readlink(abs);
      out.push({ ...base, kind: 'symlink', size: Buffer.byteLength(linkTarget), linkTarget });
    } else if (st.isFile()) {
      out.push({ ...base, kind: 'file', size: st.size });
    } else if (st.isDirectory()) {
      out.push({ ...base, kind: 'dir', size: 0 });
      const names = (await readdir(abs)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      for (const name of names) await visit(join(abs, name), `${path}/${name}`);
    } else {
      throw new Error(`${abs}: not a directory, file or symlink; a package payload holds only those`);
    }
  };
  await visit(root, '.');
  return out;
}
