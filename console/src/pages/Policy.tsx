import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import { hunks, lineDiff } from '../diff.js';
import { href } from '../router.js';
import type { Policy, PolicyErrors, PolicyPreview } from '../types.js';
import { errorText, PageTitle, Status } from '../ui.js';

const pretty = (v: unknown): string => JSON.stringify(v, null, 2);

type Checked =
  | { kind: 'none' }
  | { kind: 'json-error'; message: string }
  | { kind: 'invalid'; errors: PolicyErrors['errors'] }
  | { kind: 'preview'; text: string; preview: PolicyPreview };

export function PolicyPage(): preact.JSX.Element {
  const [current, setCurrent] = useState<Policy | null>(null);
  const [text, setText] = useState('');
  const [loadError, setLoadError] = useState<string | null>(null);
  const [checked, setChecked] = useState<Checked>({ kind: 'none' });
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState<{ message: string; error: boolean } | null>(null);

  useEffect(() => {
    api<Policy>('GET', '/v1/policy').then(
      (p) => {
        setCurrent(p);
        setText(pretty(p));
      },
      (err: unknown) => {
        setLoadError(`Could not load the policy in force: ${errorText(err)}`);
      },
    );
  }, []);

  // The draft as the server will read it: pretty-printed when it parses, so the diff shows changes of
  // content rather than of whitespace.
  const normalized = useMemo(() => {
    try {
      return pretty(JSON.parse(text));
    } catch {
      return text;
    }
  }, [text]);
  const diff = useMemo(() => (current ? hunks(lineDiff(pretty(current), normalized)) : []), [current, normalized]);
  const previewed = checked.kind === 'preview' && checked.text === text;

  const preview = (e: Event): void => {
    e.preventDefault();
    setSaved(null);
    let draft: unknown;
    try {
      draft = JSON.parse(text);
    } catch (err) {
      setChecked({ kind: 'json-error', message: `The policy is not valid JSON: ${errorText(err)}` });
      return;
    }
    setBusy(true);
    api<PolicyPreview>('POST', '/v1/admin/policy/preview', draft).then(
      (p) => {
        setBusy(false);
        setCurrent(p.current);
        setChecked({ kind: 'preview', text, preview: p });
      },
      (err: unknown) => {
        setBusy(false);
        const body = err instanceof ApiError ? (err.body as Partial<PolicyErrors> | null) : null;
        if (body?.valid === false && Array.isArray(body.errors)) setChecked({ kind: 'invalid', errors: body.errors });
        else setChecked({ kind: 'json-error', message: `Could not validate the policy: ${errorText(err)}` });
      },
    );
  };

  const save = (): void => {
    setBusy(true);
    api<Policy>('PUT', '/v1/admin/policy', JSON.parse(text) as unknown).then(
      (p) => {
        setBusy(false);
        setCurrent(p);
        setText(pretty(p));
        setChecked({ kind: 'none' });
        setSaved({ message: `Policy ${p.name} ${p.version} is now in force.`, error: false });
      },
      (err: unknown) => {
        setBusy(false);
        setSaved({ message: `The policy was not saved: ${errorText(err)}`, error: true });
      },
    );
  };

  return (
    <section aria-labelledby="page-title">
      <PageTitle>Policy</PageTitle>
      <Status message={loadError} error />
      {current && (
        <p>
          In force: <strong>{current.name}</strong> version <strong>{current.version}</strong>. Edit the JSON below, check it against the
          agents' own parser and see which devices would change level, then save. A changed policy needs a new version.
        </p>
      )}
      <form onSubmit={preview} class="policy">
        <label for="policy-text">Policy (JSON)</label>
        <textarea
          id="policy-text"
          spellcheck={false}
          rows={24}
          value={text}
          aria-describedby="policy-help"
          onInput={(e) => {
            setText(e.currentTarget.value);
          }}
        />
        <p id="policy-help" class="muted">
          Severities: critical, recommended, info, off.
        </p>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy || current === null}>
            Validate and preview
          </button>
          <button type="button" disabled={busy || !previewed} onClick={save}>
            Save policy
          </button>
          <button
            type="button"
            disabled={busy || current === null}
            onClick={() => {
              if (current) setText(pretty(current));
              setChecked({ kind: 'none' });
            }}
          >
            Discard changes
          </button>
        </div>
      </form>
      <Status message={saved?.message ?? null} error={saved?.error ?? false} />
      {checked.kind === 'json-error' && <Status message={checked.message} error />}
      {checked.kind === 'invalid' && (
        <div role="alert" class="errors">
          <h2>The policy is not valid</h2>
          <ul>
            {checked.errors.map((er, i) => (
              <li key={i}>
                <code>{er.path || '(top level)'}</code>: {er.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      <div aria-live="polite">
        {checked.kind === 'preview' && (
          <section class="panel preview" aria-labelledby="h-preview">
            <h2 id="h-preview">Preview{previewed ? '' : ' (of an earlier draft: preview again)'}</h2>
            <p data-preview-changed={checked.preview.changes.total - checked.preview.changes.unchanged}>
              {checked.preview.changes.total - checked.preview.changes.unchanged} of {checked.preview.changes.total} devices would change level:{' '}
              {checked.preview.changes.toFull} to full, {checked.preview.changes.toLimited} to limited, {checked.preview.changes.toBlocked} to blocked.
            </p>
            {checked.preview.examples.length > 0 && (
              <table>
                <caption>Examples</caption>
                <thead>
                  <tr>
                    <th scope="col">Device</th>
                    <th scope="col">Now</th>
                    <th scope="col">Would be</th>
                  </tr>
                </thead>
                <tbody>
                  {checked.preview.examples.map((x) => (
                    <tr key={x.id}>
                      <th scope="row">
                        <a href={href(`/devices/${encodeURIComponent(x.id)}`)}>{x.hostname}</a>
                      </th>
                      <td>{x.from}</td>
                      <td>{x.to}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        )}
      </div>
      {current && (
        <section class="panel" aria-labelledby="h-diff">
          <h2 id="h-diff">Changes against the policy in force</h2>
          {diff.length === 0 ? (
            <p>No changes.</p>
          ) : (
            <pre class="diff" tabIndex={0} aria-label="Line diff: lines starting with + are added, - removed">
              {diff.map((l, i) =>
                l.kind === 'gap' ? (
                  <span key={i} class="gap">{`… ${l.skipped} unchanged lines\n`}</span>
                ) : (
                  <span key={i} class={l.kind}>{`${l.kind === 'add' ? '+' : l.kind === 'del' ? '-' : ' '} ${l.text}\n`}</span>
                ),
              )}
            </pre>
          )}
        </section>
      )}
    </section>
  );
}
