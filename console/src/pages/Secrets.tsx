import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import type { SecretCreated, SecretInfo } from '../types.js';
import { Confirm, Dialog, errorText, PageTitle, Pager, Status, useLoad, when } from '../ui.js';

const PAGE_SIZE = 50;

const EXPIRY: Record<string, { label: string; seconds: number }> = {
  '1h': { label: '1 hour', seconds: 3600 },
  '1d': { label: '1 day', seconds: 86_400 },
  '7d': { label: '7 days', seconds: 7 * 86_400 },
  '30d': { label: '30 days', seconds: 30 * 86_400 },
};

function ShownOnce(props: { created: SecretCreated; onClose: () => void }): preact.JSX.Element {
  const [copied, setCopied] = useState<string | null>(null);
  return (
    <Dialog title="Enrollment secret created" onClose={props.onClose}>
      <p>Copy it now: it is shown this once, and only its hash is kept.</p>
      <label for="new-secret">Secret</label>
      <input id="new-secret" class="mono" readOnly value={props.created.secret} onFocus={(e) => { e.currentTarget.select(); }} />
      <div class="actions">
        <button
          type="button"
          class="primary"
          onClick={() => {
            navigator.clipboard.writeText(props.created.secret).then(
              () => { setCopied('Copied to the clipboard.'); },
              () => { setCopied('Copying was refused; select the field and copy it by hand.'); },
            );
          }}
        >
          Copy
        </button>
        <button type="button" onClick={props.onClose}>
          Done
        </button>
      </div>
      <Status message={copied} />
    </Dialog>
  );
}

export function SecretsPage(): preact.JSX.Element {
  // Newest first, a page at a time (see Pager).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const list = useLoad(() => api<{ secrets: SecretInfo[]; next: string | null }>('GET', `/v1/admin/secrets${query({ limit: PAGE_SIZE, cursor })}`), [cursor]);
  const [uses, setUses] = useState('10');
  const [expiry, setExpiry] = useState('7d');
  const [label, setLabel] = useState('');
  const [created, setCreated] = useState<SecretCreated | null>(null);
  const [revoking, setRevoking] = useState<SecretInfo | null>(null);
  const [result, setResult] = useState<{ message: string; error: boolean } | null>(null);

  const create = (e: Event): void => {
    e.preventDefault();
    const n = Number(uses);
    if (!Number.isInteger(n) || n < 1 || n > 100_000) {
      setResult({ message: 'Uses: expected a whole number from 1 to 100000.', error: true });
      return;
    }
    api<SecretCreated>('POST', '/v1/admin/secrets', { uses: n, expiresInSeconds: EXPIRY[expiry]?.seconds ?? 7 * 86_400, ...(label.trim() === '' ? {} : { label: label.trim() }) }).then(
      (s) => {
        setCreated(s);
        setResult({ message: `Secret ${s.id} created.`, error: false });
        setLabel('');
        // The new secret is the newest: back to the first page, where it is listed.
        if (cursors.length === 1) list.reload();
        else setCursors([null]);
      },
      (err: unknown) => { setResult({ message: `Could not create the secret: ${errorText(err)}`, error: true }); },
    );
  };

  const revoke = (s: SecretInfo): void => {
    setRevoking(null);
    api('DELETE', `/v1/admin/secrets/${encodeURIComponent(s.id)}`).then(
      () => {
        setResult({ message: `Secret ${s.label ?? s.id} revoked.`, error: false });
        list.reload();
      },
      (err: unknown) => { setResult({ message: `Could not revoke the secret: ${errorText(err)}`, error: true }); },
    );
  };

  return (
    <section aria-labelledby="page-title">
      <PageTitle>Enrollment secrets</PageTitle>
      <form class="filters" onSubmit={create} aria-labelledby="h-create">
        <h2 id="h-create" class="full-row">
          New secret
        </h2>
        <div class="field">
          <label for="s-label">Label</label>
          <input id="s-label" maxLength={200} value={label} onInput={(e) => { setLabel(e.currentTarget.value); }} placeholder="e.g. Berlin office laptops" />
        </div>
        <div class="field">
          <label for="s-uses">Uses</label>
          <input id="s-uses" type="number" min={1} max={100000} required value={uses} onInput={(e) => { setUses(e.currentTarget.value); }} />
        </div>
        <div class="field">
          <label for="s-expiry">Expires after</label>
          <select id="s-expiry" value={expiry} onChange={(e) => { setExpiry(e.currentTarget.value); }}>
            {Object.entries(EXPIRY).map(([k, v]) => (
              <option key={k} value={k}>
                {v.label}
              </option>
            ))}
          </select>
        </div>
        <div class="field buttons">
          <button type="submit" class="primary">
            Create secret
          </button>
        </div>
      </form>
      <Status message={result?.message ?? null} error={result?.error ?? false} />
      <Status message={list.error} error />
      {list.data && (
        <>
          <table>
            <caption>{list.data.secrets.length === 0 ? 'No enrollment secrets.' : 'Enrollment secrets'}</caption>
            <thead>
              <tr>
                <th scope="col">Label</th>
                <th scope="col">Created</th>
                <th scope="col">Expires</th>
                <th scope="col" class="n">
                  Uses left
                </th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.secrets.map((s) => {
                const expired = Date.parse(s.expiresAt) <= Date.now();
                const usable = !s.revoked && !expired && s.usesLeft > 0;
                return (
                  <tr key={s.id}>
                    <th scope="row">{s.label ?? s.id}</th>
                    <td>{when(s.createdAt)}</td>
                    <td>{when(s.expiresAt)}</td>
                    <td class="n">
                      {s.usesLeft} of {s.usesTotal}
                    </td>
                    <td>{s.revoked ? 'revoked' : expired ? 'expired' : s.usesLeft === 0 ? 'used up' : 'active'}</td>
                    <td>
                      {usable && (
                        <button type="button" class="danger" onClick={() => { setRevoking(s); }}>
                          Revoke<span class="sr-only"> {s.label ?? s.id}</span>
                        </button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <Pager cursors={cursors} next={list.data.next} onChange={setCursors} />
        </>
      )}
      {created && <ShownOnce created={created} onClose={() => { setCreated(null); }} />}
      {revoking && (
        <Confirm
          title="Revoke this enrollment secret?"
          body={`No device can enroll with "${revoking.label ?? revoking.id}" any more. Devices already enrolled with it are not affected.`}
          confirmLabel="Revoke"
          danger
          onCancel={() => { setRevoking(null); }}
          onConfirm={() => { revoke(revoking); }}
        />
      )}
    </section>
  );
}
