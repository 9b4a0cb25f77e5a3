import type { OpenSettingsResult, WalkthroughModel } from './ipc.js';

export type { OpenSettingsResult } from './ipc.js';

/**
 * Channel names and the API the preload exposes. Kept free of zod at run time so the sandboxed preload
 * bundle stays tiny; the types come from the schemas main validates with (ipc.ts), by type-only imports.
 */
export const IPC = {
  getState: 'vigil:get-state',
  checkAgain: 'vigil:check-again',
  openSettings: 'vigil:open-settings',
  /** main -> renderer: the walkthrough model changed. */
  state: 'vigil:state',
} as const;

/** `window.vigil` in the walkthrough window: the renderer's whole reach into the app. */
export interface VigilApi {
  getState(): Promise<WalkthroughModel>;
  checkAgain(checkId: string): Promise<void>;
  openSettings(checkId: string): Promise<OpenSettingsResult>;
  /** Returns a function that unsubscribes. */
  onState(listener: (model: WalkthroughModel) => void): () => void;
}
