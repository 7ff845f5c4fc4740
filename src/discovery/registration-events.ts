/** Typed events returning disposers, not an EventEmitter, whose unhandled `error` would crash the process. */

/** Why the registration stopped being (known to be) in etcd. */
export type LostReason =
  /** No keep-alive was acknowledged for longer than the TTL: etcd may have expired the lease. */
  | 'unreachable'
  /** etcd says the lease no longer exists (expired or revoked); its key is gone with it. */
  | 'lease-lost'
  /** The key was deleted while the lease lived (e.g. `etcdctl del`). */
  | 'key-deleted';

/** What `onLost` receives. */
export interface LostEvent {
  /** Why the registration is not in the registry any more. */
  reason: LostReason;
  /** The lease the key was written under when the loss was noticed (decimal string). */
  leaseId: string;
  /** The error behind `unreachable`, when there was one. */
  error?: Error;
}

/** What `onRegistered` receives after a loss healed. */
export interface RegisteredEvent {
  /** The lease the key is now written under (decimal string, as etcd3 reports it). */
  leaseId: string;
  /** True when written again under the lease it had before the loss; false for a new lease. */
  leaseKept: boolean;
  /** Milliseconds between the loss being noticed and this put. */
  downtimeMs: number;
}

/** A registry operation of the registration failed. The registration keeps trying unless it is closed. */
export class RegistrationError extends Error {
  /** Always `'RegistrationError'`. */
  override readonly name = 'RegistrationError';
  constructor(
    /** `<service>/<address>`. */
    readonly key: string,
    /** What was being done: `grant`, `keepalive`, `put`, `watch`, `close`. */
    readonly operation: string,
    /** The registry's error. */
    override readonly cause: unknown,
  ) {
    super(`registry: ${operation} of '${key}' failed: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** Removes a listener. Idempotent. */
export type Disposer = () => void;

/** Listeners run synchronously in order; one that throws is reported and stops nothing. */
export class TypedEvent<T> {
  private readonly listeners = new Set<(value: T) => void>();

  constructor(private readonly onListenerError: (err: unknown) => void) {}

  on(listener: (value: T) => void): Disposer {
    // A wrapper makes the same function registered twice count twice, as EventEmitter does.
    const entry = (value: T): void => listener(value);
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  emit(value: T): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(value);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }

  clear(): void {
    this.listeners.clear();
  }
}
