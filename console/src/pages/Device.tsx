import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { events } from '../events.js';
import { href, navigate } from '../router.js';
import type { DeviceDetail, ReportHistory } from '../types.js';
import { Confirm, errorText, evidenceText, LevelBadge, PageTitle, Status, StatusBadge, useLoad, when } from '../ui.js';

type Action = 'recheck' | 'revoke' | 'remove';

const CONFIRM: Record<Action, { title: string; body: string; label: string; danger: boolean }> = {
  recheck: {
    title: 'Re-check this device now?',
    body: 'The agent is asked to scan at once and report; its row changes when the report arrives.',
    label: 'Re-check now',
    danger: false,
  },
  revoke: {
    title: 'Revoke this device?',
    body: 'Its certificate is revoked at the CA and every gateway refuses it until it is re-admitted.',
    label: 'Revoke',
    danger: true,
  },
  remove: {
    title: 'Remove this device?',
    body: 'Its record and report history are deleted. The agent must enroll again to come back.',
    label: 'Remove',
    danger: true,
  },
};

function Facts(props: { d: DeviceDetail }): preact.JSX.Element {
  const { device, latestReport } = props.d;
  const f = latestReport?.device;
  const rows: [string, string][] = [
    ['Hostname', device.hostname],
    ['User', f?.user ?? 'unknown'],
    ['Operating system', device.os ? `${device.os.name}${device.os.version !== null ? ` (${device.os.version})` : ''}` : device.platform],
    ['Kernel', f?.os.kernel ?? 'unknown'],
    ['Architecture', f?.arch ?? 'unknown'],
    ['Hardware', f ? [f.hardware.vendor, f.hardware.model].filter((x) => x !== null).join(' ') || 'unknown' : 'unknown'],
    ['Serial number', f?.hardware.serial ?? 'unknown'],
    ['Managed (MDM)', device.managed ? 'yes' : 'no'],
    ['Agent version', latestReport?.agentVersion ?? 'unknown'],
    ['Policy applied', latestReport ? `${latestReport.policy.name} ${latestReport.policy.version}` : 'none yet'],
    ['Enrolled', when(device.enrolledAt)],
    ['Last seen', when(device.lastSeen)],
    ['Device id', device.id],
  ];
  return (
    <dl class="facts">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

export function DevicePage(props: { id: string }): preact.JSX.Element {
  const path = `/v1/admin/devices/${encodeURIComponent(props.id)}`;
  const { data, error, reload } = useLoad(() => api<DeviceDetail>('GET', path), [props.id]);
  const history = useLoad(() => api<ReportHistory>('GET', `${path}/reports?limit=50`), [props.id]);
  const [confirm, setConfirm] = useState<Action | null>(null);
  const [result, setResult] = useState<{ message: string; error: boolean } | null>(null);

  // A new report, a revocation or a policy change for this device: show it as it happens.
  useEffect(
    () =>
      events.subscribe((item) => {
        if (item === 'reset' || item.event.device === props.id) {
          reload();
          history.reload();
        }
      }),
    [props.id],
  );

  const run = (a: Action): void => {
    setConfirm(null);
    setResult({ message: 'Working…', error: false });
    const call = a === 'recheck' ? api('POST', `${path}/recheck`) : a === 'revoke' ? api('POST', `${path}/revoke`) : api('DELETE', path);
    call.then(
      () => {
        if (a === 'remove') {
          navigate('/devices');
          return;
        }
        setResult({ message: a === 'recheck' ? 'Re-check requested; waiting for the device to report.' : 'Device revoked.', error: false });
        reload();
      },
      (err: unknown) => {
        setResult({ message: `Could not ${a === 'recheck' ? 're-check' : a} the device: ${errorText(err)}`, error: true });
      },
    );
  };

  const d = data;
  const cert = d?.device.cert;
  return (
    <section aria-labelledby="page-title">
      <p class="crumbs">
        <a href={href('/devices')}>Devices</a>
      </p>
      <PageTitle>{d ? d.device.hostname || '(no hostname)' : 'Device'}</PageTitle>
      <Status message={error} error />
      {d && (
        <>
          <div class="device-head">
            <LevelBadge level={d.device.accessLevel} state={d.device.state} />
            {d.device.revokedReason !== null && <span>Revoked: {d.device.revokedReason}</span>}
            {d.directives.recheck && <span class="pending">Re-check requested {when(d.directives.recheck.requestedAt)}</span>}
            <div class="actions">
              <button type="button" onClick={() => { setConfirm('recheck'); }} disabled={d.device.state === 'revoked'}>
                Re-check now
              </button>
              <button type="button" class="danger" onClick={() => { setConfirm('revoke'); }} disabled={d.device.state === 'revoked'}>
                Revoke
              </button>
              <button type="button" class="danger" onClick={() => { setConfirm('remove'); }}>
                Remove
              </button>
            </div>
          </div>
          <Status message={result?.message ?? null} error={result?.error ?? false} />
          <div class="grid2">
            <section class="panel" aria-labelledby="h-facts">
              <h2 id="h-facts">Facts</h2>
              <Facts d={d} />
            </section>
            <section class="panel" aria-labelledby="h-cert">
              <h2 id="h-cert">Certificate</h2>
              {cert ? (
                <dl class="facts">
                  <div>
                    <dt>Subject</dt>
                    <dd>{cert.subject}</dd>
                  </div>
                  <div>
                    <dt>Issuer</dt>
                    <dd>{cert.issuer}</dd>
                  </div>
                  <div>
                    <dt>Serial</dt>
                    <dd class="mono">{cert.serial}</dd>
                  </div>
                  <div>
                    <dt>Expires</dt>
                    <dd>{when(cert.not_after)}</dd>
                  </div>
                  <div>
                    <dt>SHA-256</dt>
                    <dd class="mono wrap">{cert.fingerprint_sha256}</dd>
                  </div>
                </dl>
              ) : (
                <p>No certificate recorded.</p>
              )}
            </section>
          </div>
          <section class="panel" aria-labelledby="h-posture">
            <h2 id="h-posture">Posture</h2>
            {d.latestReport ? (
              <table class="posture">
                <caption>As of the report generated {when(d.latestReport.generatedAt)}</caption>
                <thead>
                  <tr>
                    <th scope="col">Check</th>
                    <th scope="col">Result</th>
                    <th scope="col">Severity</th>
                    <th scope="col">Evidence</th>
                  </tr>
                </thead>
                <tbody>
                  {d.latestReport.results.map((r) => (
                    <tr key={r.id} data-check={r.id}>
                      <th scope="row">{r.title}</th>
                      <td>
                        <StatusBadge status={r.status} />
                        {r.reason !== undefined && <div class="reason">{r.reason}</div>}
                      </td>
                      <td>{r.severity}</td>
                      <td>
                        <dl class="evidence">
                          {Object.entries(r.evidence).map(([k, v]) => (
                            <div key={k}>
                              <dt>{k}</dt>
                              <dd>{evidenceText(v)}</dd>
                            </div>
                          ))}
                        </dl>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p>The device has not reported yet.</p>
            )}
          </section>
          <section class="panel" aria-labelledby="h-history">
            <h2 id="h-history">History</h2>
            <Status message={history.error} error />
            {history.data && history.data.reports.length === 0 && <p>No reports yet.</p>}
            {history.data && history.data.reports.length > 0 && (
              <ol class="timeline">
                {history.data.reports.map((r, i) => {
                  const before = history.data?.reports[i + 1];
                  return (
                    <li key={r.reportId} class={before && before.accessLevel !== r.accessLevel ? 'change' : undefined}>
                      <time dateTime={r.receivedAt}>{when(r.receivedAt)}</time> <LevelBadge level={r.accessLevel} />
                      {before && before.accessLevel !== r.accessLevel && <span> changed from {before.accessLevel}</span>}
                      <span class="muted"> report #{r.seq}</span>
                    </li>
                  );
                })}
              </ol>
            )}
          </section>
          {confirm && (
            <Confirm
              title={CONFIRM[confirm].title}
              body={CONFIRM[confirm].body}
              confirmLabel={CONFIRM[confirm].label}
              danger={CONFIRM[confirm].danger}
              onCancel={() => { setConfirm(null); }}
              onConfirm={() => { run(confirm); }}
            />
          )}
        </>
      )}
    </section>
  );
}
