import type { DisplayOptions } from './types.js';

function dayKey(d: Date, opts: DisplayOptions): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: opts.timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
}

/** "14:05" today, "3 Mar, 14:05" on another day: a tooltip has little room. */
export function formatWhen(iso: string, opts: DisplayOptions): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return 'unknown time';
  const time = new Intl.DateTimeFormat(opts.locale, { timeZone: opts.timeZone, hour: '2-digit', minute: '2-digit' }).format(d);
  if (dayKey(d, opts) === dayKey(opts.now, opts)) return time;
  const day = new Intl.DateTimeFormat(opts.locale, { timeZone: opts.timeZone, day: 'numeric', month: 'short' }).format(d);
  return `${day}, ${time}`;
}

/** "3 March 2026": an expiry date, where the time of day does not matter. */
export function formatDate(iso: string, opts: DisplayOptions): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return 'an unknown date';
  return new Intl.DateTimeFormat(opts.locale, { timeZone: opts.timeZone, day: 'numeric', month: 'long', year: 'numeric' }).format(d);
}
