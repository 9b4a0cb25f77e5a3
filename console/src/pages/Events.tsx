import { useEffect, useState } from 'preact/hooks';
import { events, type LiveEvent, type StreamState } from '../events.js';
import { href } from '../router.js';
import { LevelBadge, PageTitle, when } from '../ui.js';

const CAUSE: Record<string, string> = { report: 'report', stale: 'went stale', revoked: 'revoked', policy: 'policy change' };

export function EventsPage(): preact.JSX.Element {
  const [items, setItems] = useState<LiveEvent[]>(events.recent);
  const [paused, setPaused] = useState(false);
  const [held, setHeld] = useState(0);
  const [state, setState] = useState<StreamState>(events.state);

  useEffect(() => events.onState(setState), []);
  // While paused the list holds still (to read or copy it); events keep arriving and are counted.
  useEffect(
    () =>
      events.subscribe(() => {
        if (paused) setHeld((n) => n + 1);
        else setItems(events.recent);
      }),
    [paused],
  );

  return (
    <section aria-labelledby="page-title">
      <PageTitle>Live events</PageTitle>
      <div class="device-head">
        <span class={`conn conn-${state}`}>Stream: {state === 'open' ? 'connected' : state}</span>
        <button
          type="button"
          aria-pressed={paused}
          onClick={() => {
            if (paused) {
              setItems(events.recent);
              setHeld(0);
            }
            setPaused(!paused);
          }}
        >
          {paused ? `Resume${held > 0 ? ` (${held} new)` : ''}` : 'Pause'}
        </button>
      </div>
      <p class="muted">Access-level changes as the control plane sends them to gateways, newest first.</p>
      <ol class="events" aria-live={paused ? 'off' : 'polite'} aria-label="Access-level events">
        {items.length === 0 && <li class="muted">No events since the console was opened.</li>}
        {items.map(({ key, event: e }) => (
          <li key={key}>
            <time dateTime={e.at}>{when(e.at)}</time> <a href={href(`/devices/${encodeURIComponent(e.device)}`)} class="mono">{e.device}</a>{' '}
            {e.previous !== null ? (
              <>
                <LevelBadge level={e.previous} /> → <LevelBadge level={e.current} state={e.state} />
              </>
            ) : (
              <LevelBadge level={e.current} state={e.state} />
            )}{' '}
            <span class="muted">({CAUSE[e.cause] ?? e.cause})</span>
          </li>
        ))}
      </ol>
    </section>
  );
}
