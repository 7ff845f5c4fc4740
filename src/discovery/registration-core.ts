/**
 * The backend-independent half of a registration: one self-healing loop (one bounded
 * operation at a time, retried with backoff until `close()`), `update()`, health,
 * events and close. A backend supplies `step()` and `deregister()`.
 */
import { currentMetrics } from '../metrics/metrics-binding';
import { type RegistrationMetrics } from '../metrics/registry-metrics';
import {
  RegistrationError, TypedEvent, type Disposer, type LostEvent, type LostReason, type RegisteredEvent,
} from './registration-events';
import { type Registration, type RegistrationState } from './registration';
import {
  MAX_REREGISTER_BACKOFF_MS, REREGISTER_INITIAL_BACKOFF_MS, resolveEndpointUpdate, type EndpointUpdate, type ResolvedRegistrationOptions, type ServingStatus,
} from './registration-options';
import { Backoff, equalJitter } from '../common/backoff';

/** Registrations of this process, by backend connection and key: a second one of the same key would fight the first. */
const activeKeys = new Set<string>();

interface UpdateWaiter {
  generation: number;
  resolve(): void;
  reject(err: Error): void;
}

/** The value a registration wants written. */
export interface EndpointValue {
  weight: number;
  priority: number;
  metadata: Record<string, unknown>;
}

/** Rejects with a clear error when `promise` has not settled after `timeoutMs`. */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string, who: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: ${who} did not answer within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export abstract class RegistrationCore implements Registration {
  readonly service: string;
  readonly address: string;
  abstract readonly key: string;
  abstract readonly leaseId: string | undefined;

  get reportsHealth(): boolean {
    return this.options.health !== undefined;
  }

  protected readonly ttlMs: number;
  protected readonly backoff: Backoff;
  protected readonly metrics: RegistrationMetrics | undefined;
  protected currentState: RegistrationState = 'registering';
  protected value: EndpointValue;
  protected valueGeneration = 1;
  protected writtenGeneration = 0;
  protected closing = false;
  /** What the loop is doing, for `onError` (`put`, `keepalive`, …). */
  protected operation = 'put';
  protected lossNoticedAt = 0;
  /** Kept for `registerEndpoint`'s rejection. */
  protected lastError: unknown;
  private readonly lost = new TypedEvent<LostEvent>(err => this.listenerFailed(err));
  private readonly registered = new TypedEvent<RegisteredEvent>(err => this.listenerFailed(err));
  private readonly errors = new TypedEvent<RegistrationError>(err => this.listenerFailed(err));
  private readonly updateWaiters: UpdateWaiter[] = [];
  private serving = true;
  private closePromise: Promise<void> | undefined;
  private wake: { any: boolean; resolve: () => void } | undefined;
  private readonly firstPut: { resolve: () => void; promise: Promise<void> };
  private loopDone: Promise<void> = Promise.resolve();
  private activeKey: string | undefined;

  constructor(
    protected readonly options: ResolvedRegistrationOptions,
    private readonly trace: (text: string) => void,
    /** False for announcements that are not endpoints (the client registry's): no endpoint metrics. */
    trackMetrics = true,
  ) {
    this.service = options.service;
    this.address = options.address;
    this.ttlMs = options.ttlSeconds * 1000;
    this.backoff = new Backoff({ initialMs: REREGISTER_INITIAL_BACKOFF_MS, maxMs: Math.min(MAX_REREGISTER_BACKOFF_MS, this.ttlMs / 2), jitter: equalJitter });
    this.value = { weight: options.weight, priority: options.priority, metadata: options.metadata };
    let resolveFirst = (): void => undefined;
    this.firstPut = { resolve: () => resolveFirst(), promise: new Promise<void>(resolve => { resolveFirst = resolve; }) };
    this.metrics = !trackMetrics ? undefined : currentMetrics()?.registry.track(this.service, this.address, () => this.currentState);
  }

  get state(): RegistrationState { return this.currentState; }

  onLost(listener: (event: LostEvent) => void): Disposer { return this.lost.on(listener); }
  onRegistered(listener: (event: RegisteredEvent) => void): Disposer { return this.registered.on(listener); }
  onError(listener: (error: RegistrationError) => void): Disposer { return this.errors.on(listener); }

  /** One step of the loop: whatever the registration needs next (or a wakeable sleep). Throws to back off. */
  protected abstract step(): Promise<void>;
  /** Removes the registration from the registry within `deadline` (ms epoch), reporting failures. */
  protected abstract deregister(deadline: number): Promise<void>;
  /** Releases the backend connection (last thing `close()` does). */
  protected abstract release(): void;
  /** The rejection of `registerEndpoint` after `timeoutMs` without a first write. */
  protected abstract registerTimeoutMessage(timeoutMs: number): string;

  /** Claims `activeKey` for this process (throws if taken) and starts the loop; call at the end of the constructor. */
  protected begin(activeKey: string, alreadyRegistered: string): void {
    if (activeKeys.has(activeKey)) throw new Error(`registerEndpoint: ${alreadyRegistered}; close() it first, or use update()`);
    activeKeys.add(activeKey);
    this.activeKey = activeKey;
    this.loopDone = this.run();
  }

  /** Resolves after the first put; rejects after `timeoutMs` with the last error seen. */
  async waitRegistered(timeoutMs: number): Promise<void> {
    try {
      await withTimeout(this.firstPut.promise, timeoutMs, 'registerEndpoint', this.registryName);
    } catch {
      throw new Error(this.registerTimeoutMessage(timeoutMs));
    }
  }

  async update(update: EndpointUpdate): Promise<void> {
    if (this.closing) throw new Error(`Registration.update: '${this.key}' is closed`);
    const u = resolveEndpointUpdate(update, 'Registration.update');
    this.value = {
      weight: u.weight ?? this.value.weight,
      priority: u.priority ?? this.value.priority,
      metadata: u.metadata ?? this.value.metadata,
    };
    const generation = ++this.valueGeneration;
    const written = new Promise<void>((resolve, reject) => this.updateWaiters.push({ generation, resolve, reject }));
    this.wakeLoop(true);
    try {
      await withTimeout(written, this.options.registerTimeoutMs, 'Registration.update', this.registryName);
    } catch (err) {
      const i = this.updateWaiters.findIndex(w => w.generation === generation);
      if (i >= 0) this.updateWaiters.splice(i, 1);
      throw err;
    }
  }

  /** Names the registry in messages (`etcd`, `ZooKeeper`, `Consul`). */
  protected abstract get registryName(): string;

  setServing(serving: boolean): void {
    if (this.closing) return;
    this.serving = serving;
    this.applyHealth(serving ? 'SERVING' : 'NOT_SERVING');
    this.servingChanged(serving);
  }

  /** What `setServing()` last asked for (true until then). */
  protected get servingWanted(): boolean {
    return this.serving;
  }

  /** Called by `setServing()`; a backend whose registry holds health itself (Consul's TTL check) mirrors it there. */
  protected servingChanged(_serving: boolean): void {
    // Registries without their own health (etcd, ZooKeeper) have nothing to do.
  }

  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  private async shutdown(): Promise<void> {
    const deadline = Date.now() + this.options.closeTimeoutMs;
    this.closing = true;
    this.applyHealth('NOT_SERVING');
    this.wakeLoop(false);
    // Let an in-flight operation finish (each is bounded), so what it just created is removed below.
    await withTimeout(this.loopDone, Math.max(1, (deadline - Date.now()) / 2), 'close', this.registryName).catch(() => undefined);
    await this.deregister(deadline);
    this.currentState = 'closed';
    for (const w of this.updateWaiters.splice(0)) w.reject(new Error(`Registration.update: '${this.key}' was closed before the value was written`));
    if (this.activeKey !== undefined) activeKeys.delete(this.activeKey);
    this.metrics?.close();
    this.release();
    this.lost.clear();
    this.registered.clear();
    this.errors.clear();
  }

  /** The one loop: `step()` until closed; a failed step is reported and retried after a backoff. */
  private async run(): Promise<void> {
    while (!this.closing) {
      try {
        await this.step();
      } catch (err) {
        if (this.closing) break;
        this.reportError(this.operation, err);
        await this.sleep(this.backoff.next(), false);
      }
    }
  }

  /** Values up to `generation` are written: their `update()` calls resolve. */
  protected valueWritten(generation: number): void {
    this.writtenGeneration = Math.max(this.writtenGeneration, generation);
    for (let i = this.updateWaiters.length - 1; i >= 0; i--) {
      const w = this.updateWaiters[i];
      if (w.generation <= generation) {
        this.updateWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Written (again): the first time resolves `registerEndpoint` and sets health; later ones emit `onRegistered`. */
  protected markRegistered(leaseId: string, leaseKept: boolean): void {
    const initial = this.currentState === 'registering';
    this.currentState = 'registered';
    this.backoff.reset();
    if (initial) {
      this.trace(`${this.key}: registered under ${leaseId}`);
      this.applyHealth(this.serving ? 'SERVING' : 'NOT_SERVING');
      this.firstPut.resolve();
      return;
    }
    const downtimeMs = Date.now() - this.lossNoticedAt;
    this.trace(`${this.key}: registered again after ${downtimeMs} ms under ${leaseKept ? 'the same' : 'a new'} ${leaseId}`);
    this.metrics?.reregistered(leaseKept, downtimeMs);
    this.registered.emit({ leaseId, leaseKept, downtimeMs });
  }

  protected markLost(reason: LostReason, leaseId: string, error?: unknown): void {
    if (this.closing) return;
    this.currentState = 'lost';
    this.lossNoticedAt = Date.now();
    this.trace(`${this.key}: lost (${reason}), ${leaseId}`);
    this.metrics?.lost(reason);
    this.lost.emit({ reason, leaseId, ...(error instanceof Error ? { error } : {}) });
  }

  /** Sleeps `ms`; `wakeable` sleeps also end on updates and deletes, every sleep ends on close. */
  protected sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wake = { any: wakeable, resolve: done };
    });
  }

  protected wakeLoop(onlyIfWakeable: boolean): void {
    if (this.wake && (this.wake.any || !onlyIfWakeable)) this.wake.resolve();
  }

  private applyHealth(status: ServingStatus): void {
    const health = this.options.health;
    if (!health) return;
    try {
      health.setStatus('', status);
      health.setStatus(this.service, status);
    } catch (err) {
      this.reportError('health', err);
    }
  }

  /** Whether `cause` explains a failure (etcd3's "circuit breaker is open" only repeats an earlier one). */
  protected explains(_cause: unknown): boolean {
    return true;
  }

  protected reportError(operation: string, cause: unknown): void {
    if (this.explains(cause)) this.lastError = cause;
    const error = new RegistrationError(this.key, operation, cause);
    this.trace(error.message);
    this.metrics?.failed(operation);
    this.errors.emit(error);
  }

  private listenerFailed(err: unknown): void {
    this.trace(`${this.key}: a listener threw: ${err instanceof Error ? err.message : String(err)}`);
  }
}
