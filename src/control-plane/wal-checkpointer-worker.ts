import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface CheckpointerData {
  file: string;
}

/** From the storage: 'checkpoint' (the WAL has grown) or 'close'. */
export type CheckpointerRequest = 'checkpoint' | 'close';
/** To the storage, after each 'checkpoint' request, in order: its passes are over. */
export type CheckpointerReply = 'checkpointed';

interface CheckpointRow {
  busy: number;
  log: number;
  checkpointed: number;
}

const port = parentPort;
if (port) {
  const db = new Database((workerData as CheckpointerData).file, { fileMustExist: true });
  // A checkpoint syncs the WAL before copying it and the database after, before it marks the frames done;
  // only then may the writer start the WAL again from its beginning, so nothing acknowledged can be lost.
  db.pragma('synchronous = NORMAL');
  const checkpoint = db.prepare<[], CheckpointRow>('PRAGMA wal_checkpoint(PASSIVE)');
  port.on('message', (m: CheckpointerRequest) => {
    if (m === 'close') {
      db.close();
      port.close();
      return;
    }
    // A commit landing during a pass leaves frames behind it, and the writer restarts the WAL only once every
    // frame is in the database. Later passes are short (a commit or two), so a few of them catch up.
    let previous = -1;
    for (let pass = 0; pass < 4; pass++) {
      const r = checkpoint.get();
      if (!r || r.busy !== 0 || (r.checkpointed === r.log && r.log === previous)) break;
      previous = r.log;
    }
    port.postMessage('checkpointed' satisfies CheckpointerReply);
  });
}
