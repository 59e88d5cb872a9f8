/** Asks for a token once per tab; it is kept in sessionStorage only. */
import { useState } from 'preact/hooks';
import { tokenName } from '../format';

export function SignIn({ why, onToken }: { why: string | undefined; onToken: (token: string) => void }) {
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState<string>();
  const submit = (e: Event) => {
    e.preventDefault();
    if (!tokenName(token)) {
      setProblem('That is not a dfs token: it looks like dfs_<name>_<43 characters>.');
      return;
    }
    onToken(token);
  };
  return (
    <main class="signin">
      <h1>s3-dfs</h1>
      {why ? <p class="notice error" role="alert">{why}</p> : null}
      <form onSubmit={submit}>
        <label for="token">Token</label>
        <input
          id="token"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          aria-describedby="token-help"
          aria-invalid={problem ? true : undefined}
        />
        <button type="submit">Sign in</button>
        {problem ? <p class="notice error" role="alert">{problem}</p> : null}
        <p id="token-help" class="help">
          A token of this stack (<code>dfs token create NAME</code>; the local stack keeps one in <code>.dfs-data/local.json</code>). It stays in this tab only, until you close it or sign out.
        </p>
      </form>
    </main>
  );
}
