import type { CollectContext } from '../collector.js';
import type { DistroFamily } from '../remediation/types.js';

export interface OsRelease {
  id: string;
  idLike: string[];
  name: string;
  prettyName: string;
  versionId?: string;
  versionCodename?: string;
}

/** Parses os-release(5): KEY=value lines, values optionally quoted with shell-style escapes. */
export function parseOsRelease(text: string): OsRelease {
  const kv = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    let value = line.slice(eq + 1);
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    }
    kv.set(line.slice(0, eq), value);
  }
  const id = (kv.get('ID') ?? 'linux').toLowerCase();
  const release: OsRelease = {
    id,
    idLike: (kv.get('ID_LIKE') ?? '').toLowerCase().split(/\s+/).filter(Boolean),
    name: kv.get('NAME') ?? 'Linux',
    prettyName: kv.get('PRETTY_NAME') ?? kv.get('NAME') ?? 'Linux',
  };
  const versionId = kv.get('VERSION_ID');
  if (versionId) release.versionId = versionId;
  const codename = kv.get('VERSION_CODENAME');
  if (codename) release.versionCodename = codename;
  return release;
}

export function distroFamily(rel: OsRelease): DistroFamily | undefined {
  for (const id of [rel.id, ...rel.idLike]) {
    if (id === 'debian' || id === 'ubuntu') return 'debian';
    if (id === 'fedora' || id === 'rhel' || id === 'centos') return 'fedora';
    if (id === 'suse' || id.startsWith('opensuse') || id === 'sles') return 'suse';
    if (id === 'arch') return 'arch';
  }
  return undefined;
}

/** /etc/os-release with the fallback os-release(5) prescribes. Static: cached for the static-fact TTL. */
export function readOsRelease(ctx: Pick<CollectContext, 'facts' | 'readFile'>): Promise<OsRelease> {
  return ctx.facts.static('linux.os-release', async () => {
    try {
      return parseOsRelease(await ctx.readFile('/etc/os-release'));
    } catch {
      return parseOsRelease(await ctx.readFile('/usr/lib/os-release'));
    }
  });
}
