/** Channels on the same service and connection share one watch, reference-counted; the last release closes it. */

/** A reference on a shared watch. `release()` is idempotent; the last one closes the watch. */
export interface WatchLease<W> {
  readonly watch: W;
  release(): void;
}

interface Entry<W> {
  readonly watch: W;
  readonly onClosed: (() => void) | undefined;
  refs: number;
}

export class SharedWatches<W extends { start(): void; close(): void }> {
  private readonly entries = new Map<string, Entry<W>>();

  /** Takes a reference on the watch under `key`, creating and starting it if new. */
  acquire(key: string, create: () => { watch: W; onClosed?: () => void }): WatchLease<W> {
    let entry = this.entries.get(key);
    if (!entry) {
      const created = create();
      entry = { watch: created.watch, onClosed: created.onClosed, refs: 0 };
      this.entries.set(key, entry);
      created.watch.start();
    }
    entry.refs++;
    const held = entry;
    let released = false;
    return {
      watch: held.watch,
      release: () => {
        if (released) return;
        released = true;
        held.refs--;
        if (held.refs === 0) {
          this.entries.delete(key);
          held.watch.close();
          held.onClosed?.();
        }
      },
    };
  }

  /** Live shared watches (leak tests). */
  get size(): number {
    return this.entries.size;
  }
}
