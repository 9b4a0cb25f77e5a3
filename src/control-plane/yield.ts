/** Lets the event loop serve other requests (and timers) before the caller goes on. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * `items.map(f)`, `step` items per event-loop turn: for conversions of whole pages (1,000 devices), which in
 * one turn would hold the loop for tens of milliseconds on a busy core.
 */
export async function mapInSteps<T, U>(items: readonly T[], step: number, f: (item: T) => U): Promise<U[]> {
  const out: U[] = [];
  for (let i = 0; i < items.length; i += step) {
    if (i > 0) await yieldToLoop();
    for (const item of items.slice(i, i + step)) out.push(f(item));
  }
  return out;
}
