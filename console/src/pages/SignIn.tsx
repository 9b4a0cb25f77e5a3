import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import type { Session } from '../types.js';
import { errorText, Status } from '../ui.js';

export function SignIn(props: { notice: string | null; onSignedIn: (s: Session) => void }): preact.JSX.Element {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => {
    first.current?.focus();
  }, []);

  const submit = (e: Event): void => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    api<Session>('POST', '/console/api/session', { name, password }).then(
      (s) => {
        setPassword('');
        props.onSignedIn(s);
      },
      (err: unknown) => {
        setBusy(false);
        setError(err instanceof ApiError && err.status === 429 ? 'Too many attempts. Wait a minute and try again.' : errorText(err));
      },
    );
  };

  return (
    <main id="main" class="signin">
      <form onSubmit={submit} aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to Vigil</h1>
        {props.notice !== null && <p class="notice">{props.notice}</p>}
        <label for="signin-name">Name</label>
        <input
          id="signin-name"
          ref={first}
          name="username"
          autocomplete="username"
          required
          value={name}
          onInput={(e) => {
            setName(e.currentTarget.value);
          }}
        />
        <label for="signin-password">Password</label>
        <input
          id="signin-password"
          type="password"
          name="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => {
            setPassword(e.currentTarget.value);
          }}
        />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <Status message={error} error />
      </form>
    </main>
  );
}
