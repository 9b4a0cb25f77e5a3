import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Loads on mount and whenever `deps` change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | null; error: string | null; loading: boolean; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load().then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (err: unknown) => {
        if (!live) return;
        setError(errorText(err));
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
    // `load` is a fresh closure each render; what it reads is listed in `deps`.
  }, [...deps, tick]);
  return { data, error, loading, reload: () => { setTick((t) => t + 1); } };
}

/** A polite live region: results of async actions are announced to screen readers as well as shown. */
export function Status(props: { message: string | null; error?: boolean }): preact.JSX.Element {
  return (
    <p class={props.error === true ? 'status error' : 'status'} role={props.error === true ? 'alert' : 'status'} aria-live={props.error === true ? 'assertive' : 'polite'}>
      {props.message ?? ''}
    </p>
  );
}

// Set on the first in-app navigation. A page loaded from the address bar leaves focus at the top of the
// document, where the skip link is the first stop.
let navigated = false;
addEventListener('hashchange', () => {
  navigated = true;
});

/** The page's heading takes focus on navigation, so keyboard and screen-reader users start at the top. */
export function PageTitle(props: { children: ComponentChildren }): preact.JSX.Element {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (navigated) ref.current?.focus();
  }, []);
  return (
    <h1 id="page-title" tabIndex={-1} ref={ref}>
      {props.children}
    </h1>
  );
}

/**
 * A modal on the native <dialog>: showModal() makes the rest of the page inert (the focus trap) and
 * Escape cancels it; focus returns to what opened it.
 */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren }): preact.JSX.Element {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const opener = document.activeElement;
    const d = ref.current;
    d?.showModal();
    return () => {
      d?.close();
      if (opener instanceof HTMLElement) opener.focus();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      aria-labelledby="dialog-title"
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
      onKeyDown={(e) => {
        // The modal makes the page inert, but Tab past its last control would leave for the browser's own
        // UI; wrap around instead, so keyboard users stay in the dialog until they answer it.
        if (e.key !== 'Tab' || !ref.current) return;
        const items = [...ref.current.querySelectorAll<HTMLElement>('button:not([disabled]), input, select, textarea, a[href]')];
        const first = items[0];
        const last = items[items.length - 1];
        if (!first || !last) return;
        if (e.shiftKey && document.activeElement === first) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && document.activeElement === last) {
          e.preventDefault();
          first.focus();
        }
      }}
    >
      <h2 id="dialog-title">{props.title}</h2>
      {props.children}
    </dialog>
  );
}

export function Confirm(props: {
  title: string;
  body: string;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}): preact.JSX.Element {
  return (
    <Dialog title={props.title} onClose={props.onCancel}>
      <p>{props.body}</p>
      <div class="actions">
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
        <button type="button" class={props.danger === true ? 'danger' : 'primary'} onClick={props.onConfirm}>
          {props.confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

/** The effective level, or the state that forces it (a revoked or never-reported device is blocked). */
export function LevelBadge(props: { level: string; state?: string }): preact.JSX.Element {
  const label =
    props.state === 'revoked' ? 'revoked' : props.state === 'enrolled' ? 'never reported' : props.state === 'stale' ? `${props.level} (stale)` : props.level;
  const look = props.state === 'revoked' || props.state === 'enrolled' ? 'revoked' : props.level;
  return <span class={`badge level-${look}`}>{label}</span>;
}

export function StatusBadge(props: { status: string }): preact.JSX.Element {
  return <span class={`badge check-${props.status}`}>{props.status}</span>;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export function when(at: string | number | null | undefined): string {
  if (at === null || at === undefined) return 'never';
  return dateFmt.format(new Date(at));
}

export function ago(at: string | null): string {
  if (at === null) return 'never';
  const s = Math.round((Date.now() - Date.parse(at)) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** Evidence values are device-supplied: rendered as text (JSON for structures), never as markup. */
export function evidenceText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * Previous/Next over cursor pages: `cursors` holds the cursor of every page up to this one (null for the first);
 * Previous pops one, Next pushes the page's `next`.
 */
export function Pager(props: { cursors: (string | null)[]; next: string | null; onChange: (cursors: (string | null)[]) => void }): preact.JSX.Element {
  const { cursors, next, onChange } = props;
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={cursors.length === 1} onClick={() => { onChange(cursors.slice(0, -1)); }}>
        Previous
      </button>
      <button
        type="button"
        disabled={next === null}
        onClick={() => {
          if (next !== null) onChange([...cursors, next]);
        }}
      >
        Next
      </button>
    </nav>
  );
}
