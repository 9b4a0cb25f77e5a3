import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import type { AuditPage as AuditPageData } from '../types.js';
import { PageTitle, Pager, Status, useLoad, when } from '../ui.js';

const PAGE_SIZE = 50;

export function AuditPage(): preact.JSX.Element {
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const { data, error } = useLoad(() => api<AuditPageData>('GET', `/v1/admin/audit${query({ limit: PAGE_SIZE, cursor })}`), [cursor]);
  return (
    <section aria-labelledby="page-title">
      <PageTitle>Audit log</PageTitle>
      <p class="muted">Every admin action, by console session or API token, newest first.</p>
      <Status message={error} error />
      {data && (
        <>
          <table class="audit">
            <caption>{data.entries.length === 0 ? 'No entries.' : `Entries ${(cursors.length - 1) * PAGE_SIZE + 1}–${(cursors.length - 1) * PAGE_SIZE + data.entries.length}`}</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">From</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {data.entries.map((e) => (
                <tr key={e.id}>
                  <td>
                    <time dateTime={new Date(e.at).toISOString()}>{when(e.at)}</time>
                  </td>
                  <td>{e.actor}</td>
                  <td class="mono">{e.action}</td>
                  <td class="mono">{e.target ?? ''}</td>
                  <td class="mono">{e.ip}</td>
                  <td class="mono small">{e.detail === null ? '' : JSON.stringify(e.detail)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager cursors={cursors} next={data.next} onChange={setCursors} />
        </>
      )}
    </section>
  );
}
