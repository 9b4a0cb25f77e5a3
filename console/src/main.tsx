import { render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, onServerActivity, onUnauthorized, setSession } from './api.js';
import { events } from './events.js';
import { AuditPage } from './pages/Audit.js';
import { DevicePage } from './pages/Device.js';
import { DevicesPage } from './pages/Devices.js';
import { EventsPage } from './pages/Events.js';
import { OverviewPage } from './pages/Overview.js';
import { PolicyPage } from './pages/Policy.js';
import { SecretsPage } from './pages/Secrets.js';
import { SignIn } from './pages/SignIn.js';
import { currentRoute, href, navigate, useRoute, type Route } from './router.js';
import type { Session } from './types.js';
import { errorText } from './ui.js';
import './app.css';

type Theme = 'light' | 'dark';
const THEME_KEY = 'vigil-console-theme';

function storedTheme(): Theme | null {
  const t = localStorage.getItem(THEME_KEY);
  return t === 'light' || t === 'dark' ? t : null;
}

function applyTheme(t: Theme | null): void {
  if (t === null) delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}
// Before the first render, so a remembered theme does not flash the other one.
applyTheme(storedTheme());

function ThemeToggle(): preact.JSX.Element {
  const system = (): Theme => (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  const [theme, setTheme] = useState<Theme>(() => storedTheme() ?? system());
  const next: Theme = theme === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      class="theme-toggle"
      aria-pressed={theme === 'dark'}
      onClick={() => {
        localStorage.setItem(THEME_KEY, next);
        applyTheme(next);
        setTheme(next);
      }}
    >
      Dark theme
    </button>
  );
}

const NAV: { path: string; label: string }[] = [
  { path: '/', label: 'Overview' },
  { path: '/devices', label: 'Devices' },
  { path: '/policy', label: 'Policy' },
  { path: '/secrets', label: 'Enrollment secrets' },
  { path: '/events', label: 'Live events' },
  { path: '/audit', label: 'Audit log' },
];

function Page(props: { route: Route }): preact.JSX.Element {
  const { path, params } = props.route;
  const device = /^\/devices\/([^/]+)$/.exec(path);
  if (device?.[1] !== undefined) return <DevicePage id={decodeURIComponent(device[1])} />;
  switch (path) {
    case '/':
      return <OverviewPage />;
    case '/devices':
      return <DevicesPage params={params} />;
    case '/policy':
      return <PolicyPage />;
    case '/secrets':
      return <SecretsPage />;
    case '/events':
      return <EventsPage />;
    case '/audit':
      return <AuditPage />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>
            There is no page here. <a href="#/">Go to the overview</a>.
          </p>
        </section>
      );
  }
}

function Shell(props: { session: Session; onSignOut: () => void }): preact.JSX.Element {
  const route = useRoute();
  const section = route.path === '/' ? '/' : `/${route.path.split('/')[1] ?? ''}`;
  return (
    <>
      <a class="skip-link" href="#main" onClick={(e) => {
        // The hash belongs to the router: move focus without navigating.
        e.preventDefault();
        document.getElementById('main')?.focus();
      }}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Vigil console</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.path}>
                <a href={href(n.path)} aria-current={section === n.path ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span>
            Signed in as <strong>{props.session.name}</strong>
          </span>
          <ThemeToggle />
          <button type="button" onClick={props.onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page route={route} key={route.path} />
      </main>
    </>
  );
}

function App(): preact.JSX.Element {
  const [session, setSess] = useState<Session | null | 'loading'>('loading');
  const [notice, setNotice] = useState<string | null>(null);
  const idleTimer = useRef<number | undefined>(undefined);

  const signedIn = useCallback((s: Session) => {
    setSession(s);
    setSess(s);
    setNotice(null);
    events.open();
    const r = currentRoute();
    if (r.path === '/sign-in') navigate(r.params.get('next') ?? '/');
  }, []);

  const signedOut = useCallback((message: string | null) => {
    setSession(null);
    setSess(null);
    setNotice(message);
    events.close();
    clearTimeout(idleTimer.current);
    const r = currentRoute();
    if (r.path !== '/sign-in') navigate('/sign-in', { next: r.path === '/' ? null : `${r.path}${r.params.size > 0 ? `?${r.params.toString()}` : ''}` });
  }, []);

  useEffect(() => {
    onUnauthorized((m) => {
      signedOut(m);
    });
    api<Session>('GET', '/console/api/session').then(signedIn, () => {
      signedOut(null);
    });
  }, [signedIn, signedOut]);

  // The server ends a session idle for idleTimeoutSeconds; when that has passed here too, ask it (a GET
  // that finds the session gone answers 401) rather than leave a console open that can no longer act.
  useEffect(() => {
    if (session === 'loading' || session === null) return;
    const arm = (): void => {
      clearTimeout(idleTimer.current);
      idleTimer.current = window.setTimeout(() => {
        api<Session>('GET', '/console/api/session').catch(() => {
          signedOut('You were signed out after being idle. Sign in again.');
        });
      }, (session.idleTimeoutSeconds + 5) * 1000);
    };
    onServerActivity(arm);
    arm();
    return () => {
      clearTimeout(idleTimer.current);
    };
  }, [session, signedOut]);

  if (session === 'loading') return <p class="loading">Loading…</p>;
  if (session === null) return <SignIn notice={notice} onSignedIn={signedIn} />;
  return (
    <Shell
      session={session}
      onSignOut={() => {
        api('DELETE', '/console/api/session').then(
          () => {
            signedOut('You have signed out.');
          },
          (err: unknown) => {
            signedOut(`Signed out here; the server said: ${errorText(err)}`);
          },
        );
      }}
    />
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
