import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPkg, buildPkgInputs, PkgBuildError } from '../../src/installers/pkg.js';
import { walkTree, type TreeEntry } from '../../src/installers/pkg-tree.js';

const run = promisify(execFile);

/**
 * The .pkg written on Linux by the project's own xar, cpio and Bom writers, read back by other code: bsdtar
 * (libarchive) lists and extracts the xar (checking the TOC checksum and each file's sha1) and the gzip cpio
 * Payload and Scripts; Python's XML parser reads the TOC, PackageInfo and Distribution; coreutils' cksum gives
 * the Bom's per-file checksums; the Bom itself is walked by a reader written here from bomutils' layout,
 * independently of src/installers/bom.ts.
 *
 * NOT proven here: that Apple's Installer accepts the package (no Mac: installer(8), pkgutil --expand and
 * lsbom never ran on it), nor anything about signing (pkgutil --check-signature, productsign, notarization
 * all need a Mac and Apple's services).
 */

let dir: string;
let pkg: string;
let expanded: string;
/** The same inputs laid out by buildPkgInputs: what the payload must hold. */
let tree: string;
const TRAY_ID = 'dev.vigil.tray.app';
const ENROLLMENT = { controlPlaneUrl: 'https://vigil.example.com:8443', enrollmentSecret: 'vigil_k3d9_Zm9vYmFyYmF6cXV4LWJ1aWx0LWlu' };
/** More paths than one Bom leaf holds (256), so the Paths tree needs a branch node and chained leaves. */
const MODULES = 300;

function infoPlist(): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>CFBundleIdentifier</key><string>${TRAY_ID}</string>
<key>CFBundleShortVersionString</key><string>1.2.3</string>
<key>CFBundleVersion</key><string>1.2.3.45</string>
</dict></plist>
`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vigil-pkg-container-'));
  const app = join(dir, 'app');
  await mkdir(join(app, 'dist', 'src', 'cli'), { recursive: true });
  await writeFile(join(app, 'package.json'), '{"name":"vigil","type":"module"}\n');
  await writeFile(join(app, 'dist', 'src', 'cli', 'main.js'), '// cli\n');
  await mkdir(join(app, 'node_modules', '.bin'), { recursive: true });
  for (let i = 0; i < MODULES; i++) await writeFile(join(app, 'node_modules', `m${String(i).padStart(3, '0')}.js`), `export default ${i};\n`.repeat(i % 7));
  await symlink('../m001.js', join(app, 'node_modules', '.bin', 'm1'));
  await writeFile(join(app, 'node_modules', 'private.txt'), 'owner only\n', { mode: 0o600 });
  const tray = join(dir, 'Vigil.app');
  await mkdir(join(tray, 'Contents', 'MacOS'), { recursive: true });
  await writeFile(join(tray, 'Contents', 'MacOS', 'Vigil'), 'PLACEHOLDER tray\n', { mode: 0o755 });
  await writeFile(join(tray, 'Contents', 'Info.plist'), infoPlist());
  await writeFile(join(dir, 'node'), Buffer.concat([Buffer.from([0xcf, 0xfa, 0xed, 0xfe]), Buffer.alloc(70_000, 7)]));
  const input = { nodeBin: join(dir, 'node'), appDir: app, trayApp: tray };
  pkg = await buildPkg({ input, outFile: join(dir, 'out', 'vigil-1.2.3.pkg'), version: '1.2.3', enrollment: ENROLLMENT });
  tree = join(dir, 'tree');
  await buildPkgInputs({ input, outDir: tree, enrollment: ENROLLMENT });
  expanded = join(dir, 'expanded');
  await mkdir(expanded);
  await run('bsdtar', ['-xf', pkg, '-C', expanded]);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `bsdtar -tv --numeric-owner`: path -> { mode string, uid, gid, link target }. */
async function listing(archive: string): Promise<Map<string, { mode: string; uid: number; gid: number; size: number; link?: string }>> {
  const { stdout } = await run('bsdtar', ['-tvf', archive, '--numeric-owner'], { maxBuffer: 16 * 1024 * 1024 });
  const out = new Map<string, { mode: string; uid: number; gid: number; size: number; link?: string }>();
  for (const line of stdout.split('\n').filter((l) => l !== '')) {
    const m = /^(\S{10})\s+\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+\w{3}\s+\d+\s+[\d:]+\s(.*?)(?: -> (.*))?$/.exec(line);
    if (!m) throw new Error(`unexpected bsdtar line: ${line}`);
    out.set(m[5] ?? '', { mode: m[1] ?? '', uid: Number(m[2]), gid: Number(m[3]), size: Number(m[4]), ...(m[6] !== undefined ? { link: m[6] } : {}) });
  }
  return out;
}

/** Parses XML with Python's parser (another implementation than anything in this repo) into a JSON tree. */
async function parseXml(xml: string | Buffer): Promise<XmlNode> {
  const py = `import sys, json, xml.etree.ElementTree as ET
def conv(e): return {"tag": e.tag, "attrs": e.attrib, "text": (e.text or "").strip(), "children": [conv(c) for c in e]}
print(json.dumps(conv(ET.fromstring(sys.stdin.buffer.read()))))`;
  const child = execFile('python3', ['-c', py], { maxBuffer: 16 * 1024 * 1024 });
  const result = new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`python3 XML parse exited ${String(code)}`));
    });
  });
  child.stdin?.end(xml);
  return JSON.parse(await result) as XmlNode;
}

interface XmlNode {
  tag: string;
  attrs: Record<string, string>;
  text: string;
  children: XmlNode[];
}

const childrenNamed = (n: XmlNode, tag: string): XmlNode[] => n.children.filter((c) => c.tag === tag);
const childNamed = (n: XmlNode, tag: string): XmlNode | undefined => childrenNamed(n, tag)[0];

function modeString(e: TreeEntry): string {
  const type = e.kind === 'dir' ? 'd' : e.kind === 'symlink' ? 'l' : '-';
  const rwx = (bits: number): string => `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${bits & 1 ? 'x' : '-'}`;
  return `${type}${rwx(e.perm >> 6)}${rwx(e.perm >> 3)}${rwx(e.perm)}`;
}

describe('the .pkg container (xar), read back by bsdtar', () => {
  it('is a product archive: Distribution at the top, the component package vigil.pkg/ with Bom, Payload, Scripts, PackageInfo', async () => {
    const l = await listing(pkg);
    expect([...l.keys()].sort()).toEqual(['Distribution', 'vigil.pkg', 'vigil.pkg/Bom', 'vigil.pkg/PackageInfo', 'vigil.pkg/Payload', 'vigil.pkg/Scripts']);
    for (const [path, e] of l) {
      expect([e.uid, e.gid], path).toEqual([0, 0]);
      expect(e.mode, path).toBe(path === 'vigil.pkg' ? 'drwxr-xr-x' : '-rw-r--r--');
    }
    expect(readFileSync(pkg).subarray(0, 4).toString('ascii')).toBe('xar!');
  });

  it('the TOC checksum and every file\'s archived and extracted sha1 match the heap', async () => {
    const buf = readFileSync(pkg);
    expect(buf.readUInt16BE(4)).toBe(28);
    expect(buf.readUInt16BE(6)).toBe(1);
    expect(buf.readUInt32BE(24)).toBe(1);
    const tocLen = Number(buf.readBigUInt64BE(8));
    const tocZ = buf.subarray(28, 28 + tocLen);
    const tocXml = inflateSync(tocZ);
    expect(tocXml.length).toBe(Number(buf.readBigUInt64BE(16)));
    const heap = buf.subarray(28 + tocLen);
    const toc = childNamed(await parseXml(tocXml), 'toc');
    if (!toc) throw new Error('no <toc>');
    const sum = childNamed(toc, 'checksum');
    expect(sum?.attrs.style).toBe('sha1');
    const at = Number(childNamed(sum ?? toc, 'offset')?.text);
    const size = Number(childNamed(sum ?? toc, 'size')?.text);
    expect([at, size]).toEqual([0, 20]);
    expect(heap.subarray(at, at + size).toString('hex')).toBe(createHash('sha1').update(tocZ).digest('hex'));
    const seen: string[] = [];
    const visit = (files: XmlNode[], prefix: string): void => {
      for (const f of files) {
        const name = `${prefix}${childNamed(f, 'name')?.text ?? ''}`;
        const data = childNamed(f, 'data');
        if (data) {
          const num = (tag: string): number => Number(childNamed(data, tag)?.text);
          const stored = heap.subarray(num('offset'), num('offset') + num('length'));
          const encoding = childNamed(data, 'encoding')?.attrs.style;
          const raw = encoding === 'application/x-gzip' ? inflateSync(stored) : stored;
          expect(createHash('sha1').update(stored).digest('hex'), name).toBe(childNamed(data, 'archived-checksum')?.text);
          expect(createHash('sha1').update(raw).digest('hex'), name).toBe(childNamed(data, 'extracted-checksum')?.text);
          expect(raw.length, name).toBe(num('size'));
          expect(raw.equals(readFileSync(join(expanded, name))), name).toBe(true);
          // Payload and Scripts are gzip already: stored as they are.
          if (name.endsWith('Payload') || name.endsWith('Scripts')) expect(encoding, name).toBe('application/octet-stream');
          seen.push(name);
        }
        visit(childrenNamed(f, 'file'), `${name}/`);
      }
    };
    visit(childrenNamed(toc, 'file'), '');
    expect(seen.sort()).toEqual(['Distribution', 'vigil.pkg/Bom', 'vigil.pkg/PackageInfo', 'vigil.pkg/Payload', 'vigil.pkg/Scripts']);
  });

  it('bsdtar refuses the archive when the stored TOC checksum or a file\'s bytes are altered', async () => {
    const buf = readFileSync(pkg);
    const heapStart = 28 + Number(buf.readBigUInt64BE(8));
    const badToc = Buffer.from(buf);
    badToc[heapStart + 3] = (badToc[heapStart + 3] ?? 0) ^ 0xff;
    await writeFile(join(dir, 'bad-toc.pkg'), badToc);
    await expect(run('bsdtar', ['-tf', join(dir, 'bad-toc.pkg')])).rejects.toMatchObject({ code: 1 });
    const badData = Buffer.from(buf);
    // A byte in the middle of the stored Payload: gzip is still readable, the sha1 no longer matches.
    const payload = readFileSync(join(expanded, 'vigil.pkg', 'Payload'));
    const at = buf.indexOf(payload) + Math.floor(payload.length / 2);
    expect(at).toBeGreaterThan(heapStart);
    badData[at] = (badData[at] ?? 0) ^ 0xff;
    await writeFile(join(dir, 'bad-data.pkg'), badData);
    await mkdir(join(dir, 'bad-out'));
    await expect(run('bsdtar', ['-xf', join(dir, 'bad-data.pkg'), '-C', join(dir, 'bad-out')])).rejects.toThrow(/Sumcheck error/);
  });
});

describe('Payload and Scripts (gzip cpio odc), read back by bsdtar', () => {
  it('the Payload holds the payload tree: every path, mode, owner root (wheel, admin for /Applications), symlink and content', async () => {
    expect(readFileSync(join(expanded, 'vigil.pkg', 'Payload')).subarray(0, 2).toString('hex')).toBe('1f8b');
    const raw = (await run('sh', ['-c', `gzip -dc "${join(expanded, 'vigil.pkg', 'Payload')}" | head -c 6`])).stdout;
    expect(raw).toBe('070707');
    const l = await listing(join(expanded, 'vigil.pkg', 'Payload'));
    const expected = await walkTree(join(tree, 'root'));
    expect([...l.keys()]).toEqual(expected.map((e) => e.path));
    const out = join(dir, 'payload');
    await mkdir(out);
    await run('bsdtar', ['-xpf', join(expanded, 'vigil.pkg', 'Payload'), '-C', out]);
    const system: Record<string, string> = { '.': 'drwxr-xr-x', './Applications': 'drwxrwxr-x', './Library': 'drwxr-xr-x' };
    for (const e of expected) {
      const got = l.get(e.path);
      expect(got?.uid, e.path).toBe(0);
      expect(got?.gid, e.path).toBe(e.path === './Applications' ? 80 : 0);
      expect(got?.mode, e.path).toBe(system[e.path] ?? modeString(e));
      if (e.kind === 'file') {
        expect(got?.size, e.path).toBe(e.size);
        expect(readFileSync(join(out, e.path)).equals(readFileSync(e.abs)), e.path).toBe(true);
        expect(statSync(join(out, e.path)).mode & 0o7777, e.path).toBe(e.perm);
      }
      if (e.kind === 'symlink') {
        expect(got?.link, e.path).toBe(e.linkTarget);
        expect(readlinkSync(join(out, e.path)), e.path).toBe(e.linkTarget);
      }
    }
    // The ones that matter on a Mac, named.
    expect(l.get('./Library/Vigil/node')?.mode).toBe('-rwxr-xr-x');
    expect(l.get('./Library/Application Support/Vigil/enrollment-secret')?.mode).toBe('-rw-------');
    expect(l.get('./Library/Vigil/app/node_modules/private.txt')?.mode).toBe('-rw-------');
    expect(l.get('./Library/Vigil/app/node_modules/.bin/m1')?.link).toBe('../m001.js');
    expect(l.get('./Library/LaunchDaemons/dev.vigil.agent.plist')?.mode).toBe('-rw-r--r--');
    expect(lstatSync(join(out, 'Library/Vigil/app/node_modules/.bin/m1')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(out, 'Library/Application Support/Vigil/enrollment-secret'), 'utf8')).toBe(`${ENROLLMENT.enrollmentSecret}\n`);
  });

  it('the Scripts archive holds preinstall and postinstall, executable, as laid out', async () => {
    const l = await listing(join(expanded, 'vigil.pkg', 'Scripts'));
    expect([...l.entries()]).toEqual([
      ['.', { mode: 'drwxr-xr-x', uid: 0, gid: 0, size: 0 }],
      ['./postinstall', expect.objectContaining({ mode: '-rwxr-xr-x', uid: 0, gid: 0 })],
      ['./preinstall', expect.objectContaining({ mode: '-rwxr-xr-x', uid: 0, gid: 0 })],
    ]);
    const out = join(dir, 'scripts');
    await mkdir(out);
    await run('bsdtar', ['-xf', join(expanded, 'vigil.pkg', 'Scripts'), '-C', out]);
    for (const s of ['preinstall', 'postinstall']) expect(readFileSync(join(out, s), 'utf8')).toBe(readFileSync(join(tree, 'scripts', s), 'utf8'));
  });
});

/** A Bom reader written from bomutils' description (lsbom), independent of src/installers/bom.ts. */
function readBom(buf: Buffer): { vars: Map<string, number>; numberOfPaths: number; leaves: number; paths: Map<string, { id: number; type: number; mode: number; uid: number; gid: number; size: number; checksum: number; blockLength: number; link?: string }> } {
  expect(buf.subarray(0, 8).toString('ascii')).toBe('BOMStore');
  expect(buf.readUInt32BE(8)).toBe(1);
  // The header is padded to 512 bytes, as Apple's mkbom writes it.
  expect(buf.subarray(32, 512).every((b) => b === 0)).toBe(true);
  const tableOffset = buf.readUInt32BE(16);
  const varsOffset = buf.readUInt32BE(24);
  const count = buf.readUInt32BE(tableOffset);
  expect(buf.readUInt32BE(12)).toBe(count - 1);
  const block = (i: number): Buffer => {
    expect(i).toBeGreaterThan(0);
    expect(i).toBeLessThan(count);
    const addr = buf.readUInt32BE(tableOffset + 4 + i * 8);
    const len = buf.readUInt32BE(tableOffset + 8 + i * 8);
    expect(addr + len).toBeLessThanOrEqual(varsOffset);
    return buf.subarray(addr, addr + len);
  };
  // The free list follows the table.
  const freeCount = buf.readUInt32BE(tableOffset + 4 + count * 8);
  expect(buf.readUInt32BE(20)).toBe(4 + count * 8 + 4 + freeCount * 8);
  const vars = new Map<string, number>();
  let at = varsOffset + 4;
  for (let i = 0; i < buf.readUInt32BE(varsOffset); i++) {
    const index = buf.readUInt32BE(at);
    const len = buf.readUInt8(at + 4);
    vars.set(buf.subarray(at + 5, at + 5 + len).toString('ascii'), index);
    at += 5 + len;
  }
  const info = block(vars.get('BomInfo') ?? 0);
  const treeBlock = block(vars.get('Paths') ?? 0);
  expect(treeBlock.subarray(0, 4).toString('ascii')).toBe('tree');
  // Down the leftmost branch to the first leaf, then along the forward links.
  let node = block(treeBlock.readUInt32BE(8));
  while (node.readUInt16BE(0) === 0) node = block(node.readUInt32BE(12));
  const raw = new Map<number, { parent: number; name: string; info2: Buffer }>();
  let leaves = 0;
  for (;;) {
    leaves++;
    for (let i = 0; i < node.readUInt16BE(2); i++) {
      const info1 = block(node.readUInt32BE(12 + i * 8));
      const file = block(node.readUInt32BE(16 + i * 8));
      raw.set(info1.readUInt32BE(0), { parent: file.readUInt32BE(0), name: file.subarray(4, file.indexOf(0, 4)).toString(), info2: block(info1.readUInt32BE(4)) });
    }
    const forward = node.readUInt32BE(4);
    if (forward === 0) break;
    node = block(forward);
  }
  expect(treeBlock.readUInt32BE(16)).toBe(raw.size);
  const full = (id: number): string => {
    const r = raw.get(id);
    if (!r) throw new Error(`no path id ${id}`);
    return r.parent === 0 ? r.name : `${full(r.parent)}/${r.name}`;
  };
  const paths = new Map<string, { id: number; type: number; mode: number; uid: number; gid: number; size: number; checksum: number; blockLength: number; link?: string }>();
  for (const [id, r] of raw) {
    const b = r.info2;
    const linkLen = b.readUInt32BE(27);
    paths.set(full(id), {
      id,
      type: b.readUInt8(0),
      mode: b.readUInt16BE(4),
      uid: b.readUInt32BE(6),
      gid: b.readUInt32BE(10),
      size: b.readUInt32BE(18),
      checksum: b.readUInt32BE(23),
      blockLength: b.length,
      ...(linkLen > 0 ? { link: b.subarray(31, 31 + linkLen - 1).toString() } : {}),
    });
  }
  return { vars, numberOfPaths: info.readUInt32BE(4), leaves, paths };
}

describe('the Bom, walked by an independent reader', () => {
  it('has the named variables and lists every payload path with its type, mode, owner, size, cksum and link target', async () => {
    const bom = readBom(readFileSync(join(expanded, 'vigil.pkg', 'Bom')));
    expect([...bom.vars.keys()]).toEqual(['BomInfo', 'Paths', 'HLIndex', 'VIndex', 'Size64']);
    const expected = await walkTree(join(tree, 'root'));
    expect(bom.numberOfPaths).toBe(expected.length);
    expect(bom.leaves).toBeGreaterThan(1);
    expect([...bom.paths.keys()].sort()).toEqual(expected.map((e) => e.path).sort());
    // cksum(1) from coreutils for every file: the checksum mkbom records.
    const files = expected.filter((e) => e.kind === 'file');
    const { stdout } = await run('cksum', files.map((e) => e.abs), { maxBuffer: 16 * 1024 * 1024 });
    const sums = new Map(stdout.trim().split('\n').map((l) => {
      const [crc, , ...name] = l.split(' ');
      return [name.join(' '), Number(crc)] as const;
    }));
    for (const e of expected) {
      const b = bom.paths.get(e.path);
      const type = { file: 1, dir: 2, symlink: 3 }[e.kind];
      const perm = e.path === '.' || e.path === './Library' ? 0o755 : e.path === './Applications' ? 0o775 : e.perm;
      const typeBits = { file: 0o100000, dir: 0o040000, symlink: 0o120000 }[e.kind];
      expect(b, e.path).toMatchObject({ type, mode: typeBits | perm, uid: 0, gid: e.path === './Applications' ? 80 : 0, size: e.size });
      if (e.kind === 'file') expect(b?.checksum, e.path).toBe(sums.get(e.abs));
      if (e.kind === 'symlink') expect(b?.link, e.path).toBe(e.linkTarget);
      // Each kind's block ends with its zero bytes: 8 after a directory's unknown byte, 8 after a file's checksum, 8 after a link's target.
      const length = { dir: 31, file: 35, symlink: 31 + Buffer.byteLength(e.linkTarget ?? '') + 1 + 8 }[e.kind];
      expect(b?.blockLength, e.path).toBe(length);
    }
    expect(bom.paths.get('./Library/Vigil/node')?.size).toBe(70_004);
  });
});

describe('PackageInfo and Distribution', () => {
  it('parse as XML and agree: identifier, version, installKBytes; the pkg-ref points into the archive; scripts and tray bundle named', async () => {
    const info = await parseXml(await readFile(join(expanded, 'vigil.pkg', 'PackageInfo')));
    const dist = await parseXml(await readFile(join(expanded, 'Distribution')));
    const payload = await walkTree(join(tree, 'root'));
    expect(info.tag).toBe('pkg-info');
    expect(info.attrs).toMatchObject({ identifier: 'dev.vigil.agent', version: '1.2.3', 'install-location': '/', auth: 'root', relocatable: 'false', 'format-version': '2' });
    const p = childNamed(info, 'payload');
    expect(Number(p?.attrs.numberOfFiles)).toBe(payload.length);
    expect(Number(p?.attrs.installKBytes)).toBe(Math.ceil(payload.reduce((n, e) => n + e.size, 0) / 1024));
    const scripts = childNamed(info, 'scripts');
    expect(scripts?.children.map((c) => [c.tag, c.attrs.file])).toEqual([['preinstall', './preinstall'], ['postinstall', './postinstall']]);
    expect(childNamed(info, 'bundle')?.attrs).toEqual({ path: './Applications/Vigil.app', id: TRAY_ID, CFBundleShortVersionString: '1.2.3', CFBundleVersion: '1.2.3.45' });
    for (const tag of ['bundle-version', 'upgrade-bundle', 'strict-identifier']) expect(childNamed(info, tag)?.children.map((c) => c.attrs.id), tag).toEqual([TRAY_ID]);
    expect(childNamed(info, 'relocate')?.children).toEqual([]);

    expect(dist.tag).toBe('installer-gui-script');
    expect(childNamed(dist, 'title')?.text).toBe('Vigil');
    const ref = childrenNamed(dist, 'pkg-ref').find((r) => r.text !== '');
    expect(ref?.text).toBe('#vigil.pkg');
    expect(ref?.attrs).toMatchObject({ id: info.attrs.identifier, version: info.attrs.version, installKBytes: p?.attrs.installKBytes });
    expect(childNamed(dist, 'options')?.attrs.rootVolumeOnly).toBe('true');
  });

  it('a placeholder build says so in its title; a tray without an XML Info.plist is refused by name', async () => {
    const app = join(dir, 'app');
    await writeFile(join(dir, 'placeholder-node'), 'PLACEHOLDER\n');
    const out = await buildPkg({ input: { nodeBin: join(dir, 'placeholder-node'), appDir: app }, outFile: join(dir, 'ph', 'v.pkg'), allowPlaceholders: true });
    const { stdout } = await run('bsdtar', ['-xOf', out, 'Distribution']);
    expect(childNamed(await parseXml(stdout), 'title')?.text).toMatch(/TEST BUILD with placeholder binaries: do not install/);
    const { stdout: infoXml } = await run('bsdtar', ['-xOf', out, 'vigil.pkg/PackageInfo']);
    expect(childNamed(await parseXml(infoXml), 'bundle')).toBeUndefined();
    const bad = join(dir, 'Bad.app');
    await mkdir(join(bad, 'Contents', 'MacOS'), { recursive: true });
    await writeFile(join(bad, 'Contents', 'MacOS', 'Vigil'), 'x');
    await expect(buildPkg({ input: { nodeBin: join(dir, 'node'), appDir: app, trayApp: bad }, outFile: join(dir, 'ph', 'w.pkg') })).rejects.toThrow(PkgBuildError);
    await writeFile(join(bad, 'Contents', 'Info.plist'), 'bplist00');
    await expect(buildPkg({ input: { nodeBin: join(dir, 'node'), appDir: app, trayApp: bad }, outFile: join(dir, 'ph', 'w.pkg') })).rejects.toThrow(/Info\.plist is not an XML property list/);
  });
});
