import type { WalkthroughModel } from './walkthrough.js';

/**
 * Channel names and the API the preload exposes. Kept free of zod so the sandboxed preload bundle stays
 * tiny; the schemas that main validates with live in ipc.ts.
 */
export const IPC = {
  getState: 'vigil:get-state',
  checkAgain: 'vigil:check-again',
  openSettings: 'vigil:open-settings',
  /** main -> renderer: the walkthrough model changed. */
  state: 'vigil:state',
} as const;

export interface OpenSettingsResult {
  ok: boolean;
  /** Why it could not open, in words for the user. */
  message?: string;
}

/** `window.vigil` in the walkthrough window: the renderer's whole reach into the app. */
export interface VigilApi {
  getState(): Promise<WalkthroughModel>;
  checkAgain(checkId: string): Promise<void>;
  openSettings(checkId: string): Promise<OpenSettingsResult>;
  /** Returns a function that unsubscribes. */
  onState(listener: (model: WalkthroughModel) => void): () => void;
}
