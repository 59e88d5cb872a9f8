/** The page: sign-in until a token is accepted, then the files, uploads, sync and the live feed. */
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { pageApi, session } from './api';
import { Page, type PageContext } from './context';
import { Feed } from './components/feed';
import { Files } from './components/files';
import { SignIn } from './components/signin';
import { SyncPanel } from './components/sync';
import { Uploads } from './components/uploads';
import { tokenName } from './format';
import { storesOf } from './table';
import { loadListing, type Loaded } from './ops';
import { errorWords, isSignedOut } from './words';

export function App() {
  const [token, setToken] = useState(session.token());
  const [why, setWhy] = useState<string>();
  if (!token) {
    return (
      <SignIn
        why={why}
        onToken={(t) => {
          session.signIn(t);
          setToken(t.trim());
          setWhy(undefined);
        }}
      />
    );
  }
  return (
    <Signed
      token={token}
      onSignedOut={(reason) => {
        session.signOut();
        setToken(null);
        setWhy(reason);
      }}
    />
  );
}

interface Notice {
  id: number;
  text: string;
  error: boolean;
}

function Signed({ token, onSignedOut }: { token: string; onSignedOut: (why?: string) => void }) {
  const api = useMemo(() => pageApi(token), [token]);
  const [loaded, setLoaded] = useState<Loaded & { complete: boolean }>({ files: [], unavailable: [], locks: [], complete: false });
  const [notices, setNotices] = useState<Notice[]>([]);
  const [generation, setGeneration] = useState(0);
  const seq = useRef(0);

  const push = (text: string, error: boolean) => setNotices((n) => [{ id: ++seq.current, text, error }, ...n].slice(0, 5));
  const report = useCallback((err: unknown, what: string) => {
    if (isSignedOut(err)) onSignedOut(errorWords(err));
    else push(errorWords(err, what), true);
  }, [onSignedOut]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);

  useEffect(() => {
    const stop = new AbortController();
    // The first load shows rows as pages come; a reload keeps the rows shown until it is whole.
    loadListing(api, (sofar) => setLoaded((prev) => (prev.complete ? prev : { ...sofar, complete: false })), stop.signal)
      .then((all) => !stop.signal.aborted && setLoaded({ ...all, complete: true }))
      .catch((err) => !stop.signal.aborted && report(err, 'Listing the files'));
    return () => stop.abort();
  }, [api, generation]);

  const ctx: PageContext = useMemo(() => ({ api, me: tokenName(token), report, note: (t) => push(t, false), reload }), [api, token, report, reload]);
  return (
    <Page.Provider value={ctx}>
      <header>
        <h1>s3-dfs</h1>
        <span class="who">signed in as {ctx.me ?? 'a token'}</span>
        <button type="button" onClick={() => onSignedOut()}>Sign out</button>
      </header>
      <div class="notices" role="alert" aria-live="assertive">
        {notices.map((n) => (
          <p key={n.id} class={n.error ? 'notice error' : 'notice'}>
            {n.text}
            <button type="button" class="link" aria-label="Dismiss" onClick={() => setNotices((all) => all.filter((x) => x.id !== n.id))}>×</button>
          </p>
        ))}
      </div>
      <main>
        <Files loaded={loaded} />
        <Uploads stores={storesOf(loaded.files, loaded.unavailable)} />
        <SyncPanel />
        <Feed onEvents={reload} />
      </main>
    </Page.Provider>
  );
}
