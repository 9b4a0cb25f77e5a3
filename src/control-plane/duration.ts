const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Parses "90", "90s", "15m", "12h", "7d", "2w" into seconds; null when malformed. */
export function parseDurationSeconds(text: string): number | null {
  const m = /^(\d+)\s*([smhdw]?)$/i.exec(text.trim());
  if (!m?.[1]) return null;
  const n = Number.parseInt(m[1], 10);
  const unit = UNITS[(m[2] ?? '').toLowerCase() || 's'];
  return unit === undefined || !Number.isSafeInteger(n * unit) ? null : n * unit;
}
