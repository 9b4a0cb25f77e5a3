import { useEffect, useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { events } from '../events.js';
import { currentRoute, href, navigate } from '../router.js';
import type { DevicePage, DeviceSummary, Overview } from '../types.js';
import { ago, LevelBadge, PageTitle, Pager, Status, useLoad } from '../ui.js';

const PAGE_SIZES = [25, 50, 100, 200];
const FILTERS = ['q', 'level', 'state', 'failingCheck', 'os', 'seen', 'size'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

/**
 * The server filters on the OS id a device reports (os-release ID, `macos`, `windows`) or on its platform:
 * the three platforms, then the OS ids the bundled policy knows minimum versions for.
 */
const OSES: [string, string][] = [
  ['linux', 'Linux (any)'],
  ['darwin', 'macOS (any)'],
  ['win32', 'Windows (any)'],
  ['ubuntu', 'Ubuntu'],
  ['debian', 'Debian'],
  ['fedora', 'Fedora'],
  ['rhel', 'Red Hat Enterprise Linux'],
  ['centos', 'CentOS'],
  ['rocky', 'Rocky Linux'],
  ['almalinux', 'AlmaLinux'],
  ['opensuse-leap', 'openSUSE Leap'],
  ['sles', 'SUSE Linux Enterprise'],
  ['linuxmint', 'Linux Mint'],
  ['pop', 'Pop!_OS'],
  ['elementary', 'elementary OS'],
  ['zorin', 'Zorin OS'],
];

const STATES: [string, string][] = [
  ['active', 'Reporting'],
  ['stale', 'Stale'],
  ['enrolled', 'Never reported'],
  ['revoked', 'Revoked'],
];

/** "Last seen" choices, as the bound the server filters on (`seenAfter`/`seenBefore`, ISO time). */
const SEEN: Record<string, { label: string; bound?: (now: number) => Record<string, string> }> = {
  '': { label: 'Any time' },
  '1h': { label: 'Within the last hour', bound: (now) => ({ seenAfter: new Date(now - 3_600_000).toISOString() }) },
  '24h': { label: 'Within the last day', bound: (now) => ({ seenAfter: new Date(now - 86_400_000).toISOString() }) },
  'not-24h': { label: 'Not for a day or more', bound: (now) => ({ seenBefore: new Date(now - 86_400_000).toISOString() }) },
  'not-7d': { label: 'Not for a week or more', bound: (now) => ({ seenBefore: new Date(now - 7 * 86_400_000).toISOString() }) },
};

function filtersOf(params: URLSearchParams): Filters {
  const get = (k: string): string => params.get(k) ?? '';
  return { q: get('q'), level: get('level'), state: get('state'), failingCheck: get('failingCheck'), os: get('os'), seen: get('seen'), size: get('size') };
}

function osLabel(d: DeviceSummary): string {
  return d.os ? d.os.name : d.platform;
}

export function DevicesPage(props: { params: URLSearchParams }): preact.JSX.Element {
  const filters = filtersOf(props.params);
  // Rows per page: the server takes 1 to 1000.
  const pageSize = Math.min(1000, Math.max(1, Math.trunc(Number(filters.size)) || 50));
  const [draft, setDraft] = useState(filters.q);
  // Cursors of the pages before this one: "Previous" pops, "Next" pushes.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const [rows, setRows] = useState<DeviceSummary[] | null>(null);
  const [changed, setChanged] = useState<Set<string>>(new Set());
  const [announce, setAnnounce] = useState<string | null>(null);
  const key = FILTERS.map((f) => filters[f]).join('\u0000');

  const { data: overview } = useLoad(() => api<Overview>('GET', '/v1/admin/overview'), []);
  const { data, error, loading, reload } = useLoad(
    () =>
      api<DevicePage>(
        'GET',
        `/v1/admin/devices${query({
          limit: pageSize,
          cursor,
          q: filters.q,
          level: filters.level,
          state: filters.state,
          failingCheck: filters.failingCheck,
          os: filters.os,
          ...(SEEN[filters.seen]?.bound?.(Date.now()) ?? {}),
        })}`,
      ),
    [key, cursor],
  );
  useEffect(() => {
    setCursors([null]);
  }, [key]);
  // The search box follows the address only when the search itself changed there (Back, a link): another
  // filter changing must not wipe what the admin is typing.
  useEffect(() => {
    setDraft(filters.q);
  }, [filters.q]);
  useEffect(() => {
    if (data) {
      setRows(data.devices);
      setChanged(new Set());
    }
  }, [data]);

  // Rows follow the access-level stream: a device on this page changes in place, without a reload.
  useEffect(
    () =>
      events.subscribe((item) => {
        if (item === 'reset') {
          reload();
          return;
        }
        const e = item.event;
        setRows((current) => {
          if (!current?.some((d) => d.id === e.device)) return current;
          return current.map((d) => {
            if (d.id !== e.device) return d;
            setAnnounce(`${d.hostname} is now ${e.state === 'revoked' ? 'revoked' : e.current}.`);
            return { ...d, accessLevel: e.current, state: e.state, compliant: e.compliant, lastSeen: e.cause === 'report' ? e.at : d.lastSeen, ...(e.os ? { os: e.os } : {}) };
          });
        });
        setChanged((s) => new Set(s).add(e.device));
      }),
    [],
  );

  const set = (patch: Partial<Filters>): void => {
    // From the address, not this render's `filters`: two changes in quick succession (before the hashchange
    // re-renders the page) must both stick.
    const next = { ...filtersOf(currentRoute().params), ...patch };
    navigate('/devices', next);
  };

  return (
    <section aria-labelledby="page-title">
      <PageTitle>Devices</PageTitle>
      <form
        class="filters"
        role="search"
        aria-label="Filter devices"
        onSubmit={(e) => {
          e.preventDefault();
          set({ q: draft.trim() });
        }}
      >
        <div class="field">
          <label for="f-q">Search</label>
          <input
            id="f-q"
            type="search"
            placeholder="Hostname or device id"
            value={draft}
            onInput={(e) => {
              setDraft(e.currentTarget.value);
            }}
          />
        </div>
        <div class="field">
          <label for="f-level">Access level</label>
          <select id="f-level" value={filters.level} onChange={(e) => { set({ level: e.currentTarget.value }); }}>
            <option value="">Any</option>
            <option value="full">Full</option>
            <option value="limited">Limited</option>
            <option value="blocked">Blocked</option>
          </select>
        </div>
        <div class="field">
          <label for="f-check">Failing check</label>
          <select id="f-check" value={filters.failingCheck} onChange={(e) => { set({ failingCheck: e.currentTarget.value }); }}>
            <option value="">Any</option>
            {filters.failingCheck !== '' && !overview?.topFailing.some((f) => f.check === filters.failingCheck) && (
              <option value={filters.failingCheck}>{filters.failingCheck}</option>
            )}
            {overview?.topFailing.map((f) => (
              <option key={f.check} value={f.check}>
                {f.title} ({f.count})
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-os">Operating system</label>
          <select id="f-os" value={filters.os} onChange={(e) => { set({ os: e.currentTarget.value }); }}>
            <option value="">Any</option>
            {filters.os !== '' && !OSES.some(([v]) => v === filters.os) && <option value={filters.os}>{filters.os}</option>}
            {OSES.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-state">State</label>
          <select id="f-state" value={filters.state} onChange={(e) => { set({ state: e.currentTarget.value }); }}>
            <option value="">Any</option>
            {STATES.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-seen">Last seen</label>
          <select id="f-seen" value={filters.seen} onChange={(e) => { set({ seen: e.currentTarget.value }); }}>
            {Object.entries(SEEN).map(([k, v]) => (
              <option key={k} value={k}>
                {v.label}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-size">Rows per page</label>
          <select id="f-size" value={String(pageSize)} onChange={(e) => { set({ size: e.currentTarget.value }); }}>
            {(PAGE_SIZES.includes(pageSize) ? PAGE_SIZES : [pageSize, ...PAGE_SIZES]).map((n) => (
              <option key={n} value={String(n)}>
                {n}
              </option>
            ))}
          </select>
        </div>
        <div class="field buttons">
          <button type="submit" class="primary">
            Search
          </button>
          <a class="button" href={href('/devices')}>
            Clear
          </a>
        </div>
      </form>
      <Status message={error} error />
      <Status message={loading ? 'Loading devices…' : announce} />
      {rows && (
        <>
          <table class="devices">
            <caption>
              {rows.length === 0 ? 'No device matches.' : `Devices ${(cursors.length - 1) * pageSize + 1}–${(cursors.length - 1) * pageSize + rows.length}`}
            </caption>
            <thead>
              <tr>
                <th scope="col">Hostname</th>
                <th scope="col">Access</th>
                <th scope="col">Operating system</th>
                <th scope="col">Last seen</th>
                <th scope="col">Device id</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((d) => (
                <tr key={d.id} data-device={d.id} class={changed.has(d.id) ? 'changed' : undefined}>
                  <th scope="row">
                    <a href={href(`/devices/${encodeURIComponent(d.id)}`)}>{d.hostname || '(no hostname)'}</a>
                  </th>
                  <td>
                    <LevelBadge level={d.accessLevel} state={d.state} />
                  </td>
                  <td>{osLabel(d)}</td>
                  <td title={d.lastSeen ?? undefined}>{ago(d.lastSeen)}</td>
                  <td class="mono">{d.id}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager cursors={cursors} next={data?.next ?? null} onChange={setCursors} />
        </>
      )}
    </section>
  );
}
