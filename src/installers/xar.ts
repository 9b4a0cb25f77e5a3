import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { deflateSync } from 'node:zlib';
import { xmlEscape } from './xml.js';

/**
 * A xar archive, the container of a flat .pkg, as xar(1) writes it:
 *
 *   header  28 bytes, big-endian: magic "xar!", header size 28 (u16), version 1 (u16), the TOC's compressed
 *           and uncompressed lengths (u64 each), checksum algorithm 1 = sha1 (u32)
 *   TOC     zlib-compressed XML: a <checksum> at heap offset 0, size 20 (the sha1 of the compressed TOC, which
 *           readers check before trusting anything else), then the <file> tree with each file's heap range
 *   heap    the TOC checksum, then each file's data in TOC order
 *
 * A file's <data> says where its bytes are (offset, length in the heap), how many they make once decoded
 * (size), how they are encoded (application/octet-stream = stored; application/x-gzip = zlib, xar's name for
 * it) and the sha1 of both forms. Owners are root:wheel: what Installer sees when it expands the package.
 * No signature: a Developer ID Installer signature is added by productsign on a Mac (README).
 */

export type XarNode =
  | { kind: 'file'; name: string; mode: number; source: { path: string } | { bytes: Buffer; compress: boolean } }
  | { kind: 'dir'; name: string; mode: number; children: XarNode[] };

interface Placed {
  offset: number;
  length: number;
  size: number;
  encoding: 'application/octet-stream' | 'application/x-gzip';
  archivedSha1: string;
  extractedSha1: string;
  /** What goes into the heap: the file's path (streamed, stored as is) or bytes already encoded. */
  content: { path: string } | { bytes: Buffer };
}

const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

async function sha1File(path: string): Promise<{ digest: string; size: number }> {
  const h = createHash('sha1');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: h.digest('hex'), size };
}

function isoSeconds(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** Writes nodes to outFile (through a temp file and a rename, so a failed build leaves no half archive). */
export async function writeXar(nodes: readonly XarNode[], outFile: string, created = new Date()): Promise<void> {
  const placed: Placed[] = [];
  // The TOC checksum takes the first 20 bytes of the heap.
  let heapAt = 20;
  let nextId = 1;
  const time = isoSeconds(created);

  const fileXml = async (n: XarNode, indent: string): Promise<string> => {
    const id = nextId++;
    const owner = `${indent} <user>root</user>\n${indent} <uid>0</uid>\n${indent} <group>wheel</group>\n${indent} <gid>0</gid>\n`;
    const common = `${owner}${indent} <mode>${(n.mode & 0o7777).toString(8).padStart(4, '0')}</mode>\n${indent} <mtime>${time}</mtime>\n${indent} <name>${xmlEscape(n.name)}</name>\n`;
    if (n.kind === 'dir') {
      let children = '';
      for (const c of n.children) children += await fileXml(c, `${indent} `);
      return `${indent}<file id="${id}">\n${indent} <type>directory</type>\n${common}${children}${indent}</file>\n`;
    }
    let p: Placed;
    if ('path' in n.source) {
      const { digest, size } = await sha1File(n.source.path);
      p = { offset: heapAt, length: size, size, encoding: 'application/octet-stream', archivedSha1: digest, extractedSha1: digest, content: { path: n.source.path } };
    } else {
      const raw = n.source.bytes;
      const stored = n.source.compress ? deflateSync(raw, { level: 9 }) : raw;
      p = {
        offset: heapAt,
        length: stored.length,
        size: raw.length,
        encoding: n.source.compress ? 'application/x-gzip' : 'application/octet-stream',
        archivedSha1: sha1(stored),
        extractedSha1: sha1(raw),
        content: { bytes: stored },
      };
    }
    placed.push(p);
    heapAt += p.length;
    const d = `${indent}  `;
    const data = `${indent} <data>\n${d}<length>${p.length}</length>\n${d}<offset>${p.offset}</offset>\n${d}<size>${p.size}</size>\n${d}<encoding style="${p.encoding}"/>\n${d}<archived-checksum style="sha1">${p.archivedSha1}</archived-checksum>\n${d}<extracted-checksum style="sha1">${p.extractedSha1}</extracted-checksum>\n${indent} </data>\n`;
    return `${indent}<file id="${id}">\n${indent} <type>file</type>\n${data}${common}${indent}</file>\n`;
  };

  let files = '';
  for (const n of nodes) files += await fileXml(n, '  ');
  const toc = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>
<xar>
 <toc>
  <checksum style="sha1">
   <offset>0</offset>
   <size>20</size>
  </checksum>
  <creation-time>${time}</creation-time>
${files} </toc>
</xar>
`);
  const tocZ = deflateSync(toc, { level: 9 });
  const header = Buffer.alloc(28);
  header.write('xar!', 0, 'ascii');
  header.writeUInt16BE(28, 4);
  header.writeUInt16BE(1, 6);
  header.writeBigUInt64BE(BigInt(tocZ.length), 8);
  header.writeBigUInt64BE(BigInt(toc.length), 16);
  header.writeUInt32BE(1, 24);

  const tmp = `${outFile}.tmp-${process.pid}`;
  async function* chunks(): AsyncGenerator<Buffer> {
    yield header;
    yield tocZ;
    yield createHash('sha1').update(tocZ).digest();
    for (const p of placed) {
      if ('bytes' in p.content) {
        yield p.content.bytes;
        continue;
      }
      let copied = 0;
      for await (const chunk of createReadStream(p.content.path)) {
        copied += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      // The TOC already records the length and sha1 read before: a file that changed since would break both.
      if (copied !== p.length) throw new Error(`xar: ${p.content.path} changed while it was archived`);
    }
  }
  try {
    await pipeline(chunks, createWriteStream(tmp, { mode: 0o644 }));
    await rename(tmp, outFile);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
