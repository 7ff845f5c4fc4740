/** Messages printed once per key, not once per update; the remembered keys are bounded. */
import { log, logVerbosity } from './grpc-experimental';

/** Keys remembered before the set starts over. */
const DEFAULT_MAX_KEYS = 1000;

export class WarnOnce {
  private readonly seen = new Set<string>();

  /** @param sink where lines go; defaults to grpc-js logging at ERROR (grpc-js has no WARNING and hides INFO by default). */
  constructor(
    private readonly sink: (text: string) => void = text => log(logVerbosity.ERROR, text),
    private readonly maxKeys = DEFAULT_MAX_KEYS,
  ) {}

  /** Prints `text` unless `key` (default: the text itself) was printed before. Returns whether it printed. */
  warn(text: string, key: string = text): boolean {
    if (this.seen.has(key)) return false;
    if (this.seen.size >= this.maxKeys) this.seen.clear();
    this.seen.add(key);
    this.sink(text);
    return true;
  }

  /** Lets `key` print again (the problem it named went away). */
  forget(key: string): void {
    this.seen.delete(key);
  }
}
