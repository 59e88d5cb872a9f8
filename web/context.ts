/** What every part of the signed-in page needs: the API, who is signed in, how to report, how to refresh. */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { ApiOp, ApiSender } from '../client/routes';

export interface PageContext {
  api: ApiSender<ApiOp>;
  /** The token's name: the holder of this page's locks. */
  me: string | undefined;
  /** Puts an error in words on the page (or back to sign-in when the token was refused). */
  report: (err: unknown, what: string) => void;
  /** A line that says something worked. */
  note: (text: string) => void;
  /** Reads the listing again. */
  reload: () => void;
}

export const Page = createContext<PageContext | null>(null);

export function usePage(): PageContext {
  const ctx = useContext(Page);
  if (!ctx) throw new Error('usePage outside the signed-in page');
  return ctx;
}
