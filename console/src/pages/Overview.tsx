import { api } from '../api.js';
import { href } from '../router.js';
import type { Overview } from '../types.js';
import { PageTitle, Status, useLoad, when } from '../ui.js';

const SERIES = [
  { key: 'full', label: 'Full access' },
  { key: 'limited', label: 'Limited' },
  { key: 'blocked', label: 'Blocked' },
  { key: 'stale', label: 'Stale' },
] as const;

/** Compliance over time: one line per level, drawn by Preact as SVG from the hourly snapshots. */
function HistoryChart(props: { history: Overview['history'] }): preact.JSX.Element {
  const h = props.history;
  if (h.length === 0) return <p>No snapshots yet: the control plane records one every hour.</p>;
  const W = 720;
  const H = 220;
  const pad = { l: 44, r: 12, t: 12, b: 28 };
  const max = Math.max(1, ...h.map((p) => Math.max(p.full, p.limited, p.blocked, p.stale)));
  const t0 = h[0]?.at ?? 0;
  const t1 = h[h.length - 1]?.at ?? t0;
  const x = (t: number): number => pad.l + (t1 === t0 ? (W - pad.l - pad.r) / 2 : ((t - t0) / (t1 - t0)) * (W - pad.l - pad.r));
  const y = (v: number): number => H - pad.b - (v / max) * (H - pad.t - pad.b);
  const last = h[h.length - 1];
  const summary = last
    ? `${h.length} hourly snapshots from ${when(t0)} to ${when(t1)}; latest: ${last.full} full, ${last.limited} limited, ${last.blocked} blocked, ${last.stale} stale.`
    : '';
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Compliance over time. ${summary}`}>
        {[...new Set([0, Math.round(max / 2), max])].map((v) => (
          <g key={v}>
            <line class="grid" x1={pad.l} x2={W - pad.r} y1={y(v)} y2={y(v)} />
            <text class="axis" x={pad.l - 6} y={y(v) + 4} text-anchor="end">
              {v}
            </text>
          </g>
        ))}
        <text class="axis" x={pad.l} y={H - 8}>
          {when(t0)}
        </text>
        <text class="axis" x={W - pad.r} y={H - 8} text-anchor="end">
          {when(t1)}
        </text>
        {SERIES.map((s) => (
          <g key={s.key} class={`series series-${s.key}`}>
            <polyline points={h.map((p) => `${x(p.at).toFixed(1)},${y(p[s.key]).toFixed(1)}`).join(' ')} />
            {/* Points as well as the line: a single snapshot (a new server) is a point, not a line. */}
            {h.length <= 48 && h.map((p) => <circle key={p.at} cx={x(p.at)} cy={y(p[s.key])} r={3} />)}
          </g>
        ))}
      </svg>
      <figcaption>
        <ul class="legend">
          {SERIES.map((s) => (
            <li key={s.key}>
              <span class={`swatch series-${s.key}`} aria-hidden="true" />
              {s.label}
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}

export function OverviewPage(): preact.JSX.Element {
  const { data, error } = useLoad(() => api<Overview>('GET', '/v1/admin/overview'), []);
  return (
    <section aria-labelledby="page-title">
      <PageTitle>Fleet overview</PageTitle>
      <Status message={error} error />
      {data && (
        <>
          <ul class="cards" aria-label="Device counts">
            <li class="card">
              <a href={href('/devices')}>
                <span class="num" data-count="total">{data.total}</span> devices
              </a>
            </li>
            {(['full', 'limited', 'blocked'] as const).map((l) => (
              <li key={l} class={`card level-${l}`}>
                <a href={href('/devices', { level: l })}>
                  <span class="num" data-count={l}>{data.byLevel[l]}</span> {l}
                </a>
              </li>
            ))}
            <li class="card">
              <a href={href('/devices', { state: 'stale' })}>
                <span class="num" data-count="stale">{data.stale}</span> stale
              </a>
            </li>
            <li class="card">
              <a href={href('/devices', { state: 'enrolled' })}>
                <span class="num" data-count="needsEnrollment">{data.needsEnrollment}</span> never reported
              </a>
            </li>
            <li class="card">
              <a href={href('/devices', { state: 'revoked' })}>
                <span class="num" data-count="revoked">{data.revoked}</span> revoked
              </a>
            </li>
          </ul>
          <div class="grid2">
            <section aria-labelledby="h-history" class="panel wide">
              <h2 id="h-history">Compliance over time</h2>
              <HistoryChart history={data.history} />
            </section>
            <section aria-labelledby="h-failing" class="panel">
              <h2 id="h-failing">Checks that fail most</h2>
              {data.topFailing.length === 0 ? (
                <p>No check fails on any device.</p>
              ) : (
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Check</th>
                      <th scope="col" class="n">
                        Devices
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.topFailing.map((f) => (
                      <tr key={f.check}>
                        <td>
                          <a href={href('/devices', { failingCheck: f.check })}>{f.title}</a>
                        </td>
                        <td class="n">{f.count}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </section>
            <section aria-labelledby="h-os" class="panel">
              <h2 id="h-os">By operating system</h2>
              <table>
                <thead>
                  <tr>
                    <th scope="col">OS</th>
                    <th scope="col" class="n">
                      Devices
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {data.byOs.map((o) => (
                    <tr key={o.os}>
                      <td>{o.os}</td>
                      <td class="n">{o.count}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          </div>
        </>
      )}
    </section>
  );
}
