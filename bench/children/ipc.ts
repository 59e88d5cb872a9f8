/** The child side of bench/child.ts: one answer over IPC, then exit. */
export function answer(work: () => Promise<unknown>): void {
  work().then(
    (result) => process.send!({ result }, () => process.exit(0)),
    (err: Error) => process.send!({ error: err.stack ?? String(err) }, () => process.exit(1)),
  );
}
