/** Shared by the list-then-watch loops: dropping a watcher safely, and the retry timer. */
import { type Watcher } from 'etcd3';
import { type Backoff } from '../../common/backoff';
import { resyncBackoff } from '../../discovery/discovery-watch';
import { type ResolvedResolverOptions } from '../../discovery/resolver-options';

/** Stops listening to `watcher` and cancels it; etcd3 may still emit on a watcher being cancelled, so an 'error' listener stays. */
export function abandonWatcher(watcher: Watcher | undefined): void {
  if (!watcher) return;
  watcher.removeAllListeners();
  // An 'error' without a listener would throw.
  watcher.on('error', () => undefined);
  watcher.cancel().catch(() => undefined);
}

/** One pending retry at a time, on the resync backoff, reset when a watch connects. */
export class ResyncTimer {
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;

  constructor(options: ResolvedResolverOptions) {
    this.backoff = resyncBackoff(options);
  }

  /** Replaces any pending retry by `run` after the next delay; returns the delay (ms). */
  schedule(run: () => void): number {
    clearTimeout(this.timer);
    const delayMs = this.backoff.next();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      run();
    }, delayMs);
    this.timer.unref();
    return delayMs;
  }

  reset(): void {
    this.backoff.reset();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
