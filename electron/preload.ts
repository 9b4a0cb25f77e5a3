import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { IPC, type OpenSettingsResult, type VigilApi } from '../src/ui/ipc-channels.js';
import type { WalkthroughModel } from '../src/ui/walkthrough.js';

/*
 * The page's whole reach into the app: four named calls, each carrying at most a check id. There is no
 * generic invoke or send, so a compromised page cannot reach any other channel. Main validates again.
 */
const api: VigilApi = {
  getState: () => ipcRenderer.invoke(IPC.getState) as Promise<WalkthroughModel>,
  checkAgain: (checkId: string) => ipcRenderer.invoke(IPC.checkAgain, checkId) as Promise<void>,
  openSettings: (checkId: string) => ipcRenderer.invoke(IPC.openSettings, checkId) as Promise<OpenSettingsResult>,
  onState: (listener) => {
    const relay = (_event: IpcRendererEvent, model: WalkthroughModel): void => {
      listener(model);
    };
    ipcRenderer.on(IPC.state, relay);
    return () => {
      ipcRenderer.removeListener(IPC.state, relay);
    };
  },
};

contextBridge.exposeInMainWorld('vigil', api);
