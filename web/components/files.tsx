/** The composite listing: index, name, size, modified, state, one column per store, and each file's actions. */
import { useMemo, useState } from 'preact/hooks';
import type { LockInfo } from '../../client/answers';
import { formatSize, formatTime } from '../format';
import type { Loaded } from '../ops';
import { filterRows, nextSort, pageOf, rowsOf, sortRows, storesOf, type Row, type Sort, type SortKey } from '../table';
import { DeleteDialog, LockDialog, ReadDialog, UnlockDialog } from './dialogs';

type Open = { kind: 'read' | 'delete' | 'lock'; row: Row } | { kind: 'unlock'; row: Row; lock: LockInfo };

export function Files({ loaded }: { loaded: Loaded & { complete: boolean } }) {
  const [filter, setFilter] = useState('');
  const [sort, setSort] = useState<Sort>({ key: 'name', descending: false });
  const [page, setPage] = useState(0);
  const [open, setOpen] = useState<Open>();

  const stores = useMemo(() => storesOf(loaded.files, loaded.unavailable), [loaded]);
  const all = useMemo(() => rowsOf(loaded.files, loaded.locks), [loaded]);
  const shown = useMemo(() => sortRows(filterRows(all, filter), sort), [all, filter, sort]);
  const view = pageOf(shown, page);

  const header = (key: SortKey, label: string) => (
    <th scope="col" aria-sort={sort.key === key ? (sort.descending ? 'descending' : 'ascending') : 'none'}>
      <button type="button" class="sort" onClick={() => setSort(nextSort(sort, key))}>
        {label}
        <span aria-hidden="true">{sort.key === key ? (sort.descending ? ' ▼' : ' ▲') : ''}</span>
      </button>
    </th>
  );

  return (
    <section aria-labelledby="files-h">
      <h2 id="files-h">Files</h2>
      <div class="toolbar">
        <label for="filter">Filter by name</label>
        <input id="filter" type="search" value={filter} onInput={(e) => (setFilter((e.target as HTMLInputElement).value), setPage(0))} />
        <span class="count" aria-live="polite">
          {loaded.complete ? '' : 'loading… '}
          {shown.length === all.length ? `${all.length} files` : `${shown.length} of ${all.length} files`}
          {loaded.unavailable.length ? ` · unavailable: ${loaded.unavailable.join(', ')}` : ''}
        </span>
      </div>
      <div class="scroll">
        <table class="files">
          <caption class="sr-only">Every file across the stores; sort by a column's button</caption>
          <thead>
            <tr>
              <th scope="col">#</th>
              {header('name', 'Name')}
              {header('size', 'Size')}
              {header('mtime', 'Modified (UTC)')}
              <th scope="col">State</th>
              {stores.map((s) => <th scope="col" key={s}>{s}</th>)}
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {view.rows.map((r) => (
              <FileRow key={r.name} row={r} stores={stores} unavailable={loaded.unavailable} open={(kind, lock) => setOpen(lock ? { kind: 'unlock', row: r, lock } : { kind: kind as 'read', row: r })} />
            ))}
          </tbody>
        </table>
        {all.length === 0 && loaded.complete ? <p class="empty">No files yet: upload one below.</p> : null}
      </div>
      <nav class="pager" aria-label="Pages of the listing">
        <button type="button" disabled={view.page === 0} onClick={() => setPage(view.page - 1)}>Previous</button>
        <span>Page {view.page + 1} of {view.pages}</span>
        <button type="button" disabled={view.page >= view.pages - 1} onClick={() => setPage(view.page + 1)}>Next</button>
      </nav>
      {open?.kind === 'read' ? <ReadDialog name={open.row.name} onClose={() => setOpen(undefined)} /> : null}
      {open?.kind === 'delete' ? <DeleteDialog name={open.row.name} onClose={() => setOpen(undefined)} /> : null}
      {open?.kind === 'lock' ? <LockDialog name={open.row.name} stores={stores} onClose={() => setOpen(undefined)} /> : null}
      {open?.kind === 'unlock' ? <UnlockDialog lock={open.lock} onClose={() => setOpen(undefined)} /> : null}
    </section>
  );
}

function FileRow({ row, stores, unavailable, open }: { row: Row; stores: string[]; unavailable: string[]; open: (kind: string, lock?: LockInfo) => void }) {
  return (
    <tr data-name={row.name}>
      <td data-label="#">{row.index}</td>
      <th scope="row" data-label="Name" class="name">{row.name}</th>
      <td data-label="Size">{formatSize(row.size)}</td>
      <td data-label="Modified">{formatTime(row.mtime)}</td>
      <td data-label="State">
        <span class={`badge ${row.state}`}>{row.state}</span>
        {row.locks.map((l) => (
          <span key={l.store} class="badge locked" title={l.reason ? `reason: ${l.reason}` : undefined}>
            locked by {l.holder}@{l.store}
          </span>
        ))}
      </td>
      {stores.map((s) => {
        const copy = row.stores[s];
        return (
          <td key={s} data-label={s} class="store">
            {unavailable.includes(s) ? <span class="muted">unavailable</span> : copy ? <span title={`${formatTime(copy.mtime)} · ${copy.etag}`}>{formatSize(copy.size)}</span> : <span class="missing">missing</span>}
          </td>
        );
      })}
      <td data-label="Actions" class="actions">
        <button type="button" onClick={() => open('read')} aria-label={`Download ${row.name}`}>Download</button>
        {row.locks.map((l) => (
          <button type="button" key={l.store} onClick={() => open('unlock', l)} aria-label={`Unlock ${row.name} at ${l.store}`}>Unlock{row.locks.length > 1 ? ` ${l.store}` : ''}</button>
        ))}
        <button type="button" onClick={() => open('lock')} aria-label={`Lock ${row.name}`}>Lock</button>
        <button type="button" class="danger" onClick={() => open('delete')} aria-label={`Delete ${row.name}`}>Delete</button>
      </td>
    </tr>
  );
}
