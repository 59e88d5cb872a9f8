/** A modal <dialog>: focus moves in and back, Escape closes it, the page behind is inert. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

let ids = 0;

export function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useRef(`dialog-${++ids}`);
  useEffect(() => {
    const d = ref.current!;
    if (!d.open) d.showModal();
    return () => d.close();
  }, []);
  return (
    <dialog ref={ref} aria-labelledby={id.current} onClose={onClose}>
      <h2 id={id.current}>{title}</h2>
      {children}
    </dialog>
  );
}

/** A busy flag and an action runner: the button stays disabled while the request runs. */
export async function busy(set: (b: boolean) => void, fn: () => Promise<void>): Promise<void> {
  set(true);
  try {
    await fn();
  } finally {
    set(false);
  }
}
