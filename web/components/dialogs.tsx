/** The dialogs a file's actions open: read and download, delete, lock, unlock. */
import { useEffect, useState } from 'preact/hooks';
import type { LockInfo, ReadAnswer, VersionInfo } from '../../client/answers';
import { saveAs } from '../api';
import { usePage } from '../context';
import { formatSize, formatTime, versionFileName } from '../format';
import { bytesOf, deleteFile, keepNewest, lockFile, readFile, unlockFile } from '../ops';
import { outcomeWords } from '../words';
import { busy, Dialog } from './dialog';

export function ReadDialog({ name, onClose }: { name: string; onClose: () => void }) {
  const { api, report, note, reload } = usePage();
  const [answer, setAnswer] = useState<ReadAnswer>();
  const [working, setWorking] = useState(false);
  useEffect(() => {
    readFile(api, name).then(setAnswer, (err) => (report(err, `Reading ${name}`), onClose()));
  }, [name]);

  const save = (content: VersionInfo['content'], as: string) =>
    busy(setWorking, async () => {
      try {
        saveAs(await bytesOf(content), as);
      } catch (err) {
        report(err, `Downloading ${as}`);
      }
    });

  return (
    <Dialog title={name} onClose={onClose}>
      {!answer ? <p aria-busy="true">Comparing the copies…</p> : null}
      {answer?.status === 'NOT_FOUND' ? <p>No store holds {name} any more.</p> : null}
      {answer?.status === 'SINGLE' ? (
        <>
          <p>
            <span class="badge same">SINGLE</span> one version, on {answer.copies.map((c) => c.store).join(', ')}: {formatSize(answer.copies[0]?.size ?? 0)}, modified {formatTime(answer.copies[0]?.mtime)} UTC.
          </p>
          <button type="button" disabled={working} onClick={() => save(answer.content, name.split('/').pop()!)}>Download {name}</button>
        </>
      ) : null}
      {answer?.status === 'DIFFERENT' ? (
        <>
          <p><span class="badge different">DIFFERENT</span> the stores hold {answer.versions.length} versions:</p>
          <ul class="versions">
            {answer.versions.map((v) => {
              const as = versionFileName(name, v.stores[0]!);
              return (
                <li key={v.etag + v.stores.join()}>
                  <span>
                    {v.stores.join(', ')}: {formatSize(v.size)}, modified {formatTime(v.mtime)} UTC {v.newest ? <span class="badge newest">newest</span> : null}
                  </span>
                  <button type="button" disabled={working} onClick={() => save(v.content, as)}>Download {as}</button>
                </li>
              );
            })}
          </ul>
          <button
            type="button"
            disabled={working}
            onClick={() =>
              busy(setWorking, async () => {
                try {
                  const out = await keepNewest(api, answer);
                  if (out.failed.length) report(new Error(out.failed.map((f) => f.error).join('; ')), `Keeping the newest ${name}`);
                  else note(`${name}: the newest version is now on every store.`);
                  reload();
                  onClose();
                } catch (err) {
                  report(err, `Keeping the newest ${name}`);
                }
              })
            }
          >
            Keep newest everywhere
          </button>
        </>
      ) : null}
      {answer?.unavailable.length ? <p class="notice error">Not compared: {answer.unavailable.join(', ')} did not answer.</p> : null}
      <p class="buttons"><button type="button" onClick={onClose}>Close</button></p>
    </Dialog>
  );
}

export function DeleteDialog({ name, onClose }: { name: string; onClose: () => void }) {
  const { api, report, note, reload } = usePage();
  const [working, setWorking] = useState(false);
  const remove = () =>
    busy(setWorking, async () => {
      try {
        const words = outcomeWords(await deleteFile(api, name), 'deleted');
        (words.ok ? note : (t: string) => report(new Error(t), `Deleting ${name}`))(`${name}: ${words.text}.`);
        reload();
        onClose();
      } catch (err) {
        report(err, `Deleting ${name}`);
      }
    });
  return (
    <Dialog title={`Delete ${name}?`} onClose={onClose}>
      <p>This deletes {name} from every store. Old versions stay in the stores' history for a while; the page cannot bring them back.</p>
      <p class="buttons">
        <button type="button" class="danger" disabled={working} onClick={remove}>Delete {name}</button>
        <button type="button" onClick={onClose} autofocus>Cancel</button>
      </p>
    </Dialog>
  );
}

export function LockDialog({ name, stores, onClose }: { name: string; stores: string[]; onClose: () => void }) {
  const { api, report, note, reload } = usePage();
  const [store, setStore] = useState(stores[0] ?? '');
  const [reason, setReason] = useState('');
  const [working, setWorking] = useState(false);
  const lock = (e: Event) => {
    e.preventDefault();
    void busy(setWorking, async () => {
      try {
        const l = await lockFile(api, name, store, reason.trim() || undefined);
        note(`${name} is locked at ${l.store} for ${l.holder} until ${formatTime(l.expires)} UTC.`);
        reload();
        onClose();
      } catch (err) {
        report(err, `Locking ${name}`);
      }
    });
  };
  return (
    <Dialog title={`Lock ${name}`} onClose={onClose}>
      <form onSubmit={lock}>
        <p>While it is locked, changes to {name} from anyone else wait in a queue for that store, applied in order on unlock.</p>
        <label for="lock-store">At store</label>
        <select id="lock-store" value={store} onChange={(e) => setStore((e.target as HTMLSelectElement).value)}>
          {stores.map((s) => <option key={s} value={s}>{s}</option>)}
        </select>
        <label for="lock-reason">Reason (optional)</label>
        <input id="lock-reason" value={reason} maxLength={200} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
        <p class="buttons">
          <button type="submit" disabled={working || !store}>Lock</button>
          <button type="button" onClick={onClose}>Cancel</button>
        </p>
      </form>
    </Dialog>
  );
}

export function UnlockDialog({ lock, onClose }: { lock: LockInfo; onClose: () => void }) {
  const { api, me, report, note, reload } = usePage();
  const [working, setWorking] = useState(false);
  const theirs = lock.holder !== me;
  const held = Math.max(0, lock.next - 1 - lock.applied);
  const unlock = () =>
    busy(setWorking, async () => {
      const stop = new AbortController();
      try {
        await unlockFile(api, lock.key, lock.store, theirs, stop.signal);
        note(`${lock.key} is unlocked at ${lock.store}${held ? `; ${held} held updates applied` : ''}.`);
        reload();
        onClose();
      } catch (err) {
        report(err, `Unlocking ${lock.key}`);
      }
    });
  return (
    <Dialog title={`Unlock ${lock.key} at ${lock.store}`} onClose={onClose}>
      <p>
        Locked by {lock.holder} since {formatTime(lock.since)} UTC{lock.reason ? ` (${lock.reason})` : ''}. {held} held update{held === 1 ? '' : 's'} will be applied in order.
      </p>
      {theirs ? <p class="notice error">This lock is {lock.holder}'s: unlocking takes it over from them.</p> : null}
      <p class="buttons">
        <button type="button" disabled={working} onClick={unlock}>{theirs ? `Unlock, taking it from ${lock.holder}` : 'Unlock'}</button>
        <button type="button" onClick={onClose}>Cancel</button>
      </p>
      {working ? <p aria-busy="true">Applying held updates…</p> : null}
    </Dialog>
  );
}
