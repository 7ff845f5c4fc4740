/**
 * The EndpointSlices of one Service (one namespace, one cluster): list, then watch from
 * the list's resourceVersion with bookmarks. A watch that ends is started again from the
 * last resourceVersion seen; 410 (Expired/Gone, as HTTP or as an ERROR event) lists again.
 * Failures keep the last slices; retries back off with jitter. Shared by every port's watch.
 */
import { Backoff, proportionalJitter } from '../../common/backoff';
import { type ResolvedResolverOptions } from '../../discovery/resolver-options';
import { resyncBackoff } from '../../discovery/discovery-watch';
import { KubeApiError, statusError, type KubeClient, type WatchStream } from './kube-client';
import { type EndpointSlice } from './slice-codec';

/** The label that ties a slice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** Slices per list page. */
export const LIST_PAGE_SIZE = 500;
/** The server-side watch timeout asked for: random in [5, 10) min, as client-go does, so clients do not re-watch together. */
const WATCH_TIMEOUT_MIN_SECONDS = 300;
/** Backoff after 401/403: the API server is not hammered while RBAC is being fixed. */
const AUTH_BACKOFF = { initialMs: 1_000, maxMs: 30_000 };
/** A watch that ends sooner than this without an event counts as a failure (backoff), not a normal timeout. */
const SHORT_WATCH_MS = 1_000;

export type InformerFailure =
  | { readonly kind: 'unauthorized' | 'forbidden' | 'other'; readonly error: Error };

export interface InformerListener {
  /** Slices `names` were added, changed or deleted (read them from `informer.slices`). */
  changed(names: readonly string[]): void;
  /** A list or watch failed; the last slices stay. */
  failed(failure: InformerFailure): void;
  /** A watch is open (`true`), or ended (`false`): for the contact-age metric. */
  watching?(open: boolean): void;
  /** A list after the first (410, or a retry). */
  relisted?(): void;
}

/** What a port's watch reads: the slices of one Service, and changes to them. `SliceInformer` is the one that talks to the API server. */
export interface SliceSource {
  readonly slices: ReadonlyMap<string, EndpointSlice>;
  /** The last resourceVersion seen ('' before the first list). */
  readonly resourceVersion: string;
  /** True once a list succeeded. */
  readonly listed: boolean;
  /** The last failure while no list has succeeded yet. */
  readonly lastFailure: InformerFailure | undefined;
  /** `<server> <namespace>/<service>`, for messages. */
  readonly label: string;
  readonly namespace: string;
  readonly service: string;
  on(listener: InformerListener): () => void;
}

export class SliceInformer implements SliceSource {
  /** Every slice of the Service by name, as last seen. */
  readonly slices = new Map<string, EndpointSlice>();
  /** The last resourceVersion seen ('' before the first list). */
  resourceVersion = '';
  listed = false;
  lastFailure: InformerFailure | undefined;
  private readonly listeners = new Set<InformerListener>();
  private readonly backoff: Backoff;
  private readonly authBackoff: Backoff;
  private stream: WatchStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private generation = 0;
  private closed = false;
  /** 401s since the last success: the first one is retried at once with the token read again (a rotation), unreported. */
  private unauthorizedInARow = 0;
  private readonly basePath: string;
  private readonly selector: string;

  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
    readonly service: string,
    private readonly options: ResolvedResolverOptions,
    private readonly trace: (text: string) => void,
    private readonly random: () => number = Math.random,
  ) {
    this.backoff = resyncBackoff(options, random);
    this.authBackoff = new Backoff({ ...AUTH_BACKOFF, jitter: proportionalJitter(0.2), random });
    this.basePath = `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/endpointslices`;
    this.selector = encodeURIComponent(`${SERVICE_NAME_LABEL}=${service}`);
  }

  get label(): string {
    return `${this.client.label} ${this.namespace}/${this.service}`;
  }

  on(listener: InformerListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    void this.list(this.generation);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    this.stream?.abort();
    clearTimeout(this.timer);
    this.listeners.clear();
    this.client.close();
  }

  private async list(generation: number): Promise<void> {
    const startedMs = Date.now();
    if (this.listed) for (const listener of [...this.listeners]) this.tell(() => listener.relisted?.());
    try {
      const items: EndpointSlice[] = [];
      let resourceVersion = '';
      let next: string | undefined;
      for (let page = 0; page < 10_000; page++) {
        const query = `labelSelector=${this.selector}&limit=${LIST_PAGE_SIZE}${next ? `&continue=${encodeURIComponent(next)}` : ''}`;
        const body = await this.client.getJson(`${this.basePath}?${query}`, this.options.listTimeoutMs) as {
          metadata?: { resourceVersion?: string; continue?: string }; items?: EndpointSlice[];
        };
        if (generation !== this.generation) return;
        if (page === 0) resourceVersion = body.metadata?.resourceVersion ?? '';
        items.push(...(body.items ?? []));
        next = body.metadata?.continue;
        if (!next) break;
      }
      const names = new Set<string>();
      const changed: string[] = [];
      for (const item of items) {
        const name = item.metadata?.name ?? '';
        names.add(name);
        const old = this.slices.get(name);
        if (old === undefined || old.metadata?.resourceVersion !== item.metadata?.resourceVersion) changed.push(name);
        this.slices.set(name, item);
      }
      for (const name of [...this.slices.keys()]) {
        if (!names.has(name)) {
          this.slices.delete(name);
          changed.push(name);
        }
      }
      this.resourceVersion = resourceVersion;
      const first = !this.listed;
      this.listed = true;
      this.lastFailure = undefined;
      this.authBackoff.reset();
      this.unauthorizedInARow = 0;
      this.trace(`${this.label}: listed ${items.length} slice(s) at resourceVersion ${resourceVersion} in ${Date.now() - startedMs} ms`);
      if (changed.length > 0 || first) this.emitChanged(changed);
      this.watch(generation);
    } catch (err) {
      if (generation !== this.generation) return;
      this.fail(err as Error, () => void this.list(this.generation));
    }
  }

  private watch(generation: number): void {
    const timeoutSeconds = WATCH_TIMEOUT_MIN_SECONDS + Math.floor(this.random() * WATCH_TIMEOUT_MIN_SECONDS);
    const from = this.resourceVersion;
    const path = `${this.basePath}?labelSelector=${this.selector}&watch=true&allowWatchBookmarks=true` +
      `&resourceVersion=${encodeURIComponent(from)}&timeoutSeconds=${timeoutSeconds}`;
    const startedMs = Date.now();
    let events = 0;
    this.trace(`${this.label}: watching from resourceVersion ${from}`);
    this.stream = this.client.watch(path, {
      onOpen: () => {
        if (generation !== this.generation) return;
        this.unauthorizedInARow = 0;
        for (const listener of [...this.listeners]) this.tell(() => listener.watching?.(true));
      },
      onEvent: event => {
        if (generation !== this.generation) return;
        events++;
        if (events === 1) this.backoff.reset();
        this.onEvent(event, generation);
      },
      onEnd: error => {
        if (generation !== this.generation) return;
        this.stream = undefined;
        for (const listener of [...this.listeners]) this.tell(() => listener.watching?.(false));
        if (error === undefined && (events > 0 || Date.now() - startedMs >= SHORT_WATCH_MS)) {
          this.trace(`${this.label}: watch ended by the server; watching again from ${this.resourceVersion}`);
          this.watch(generation);
          return;
        }
        const cause = error ?? new Error('the watch ended at once');
        if (cause instanceof KubeApiError && cause.code === 410) {
          this.relist(`watch from ${from}: ${cause.message}`);
          return;
        }
        this.fail(cause, () => this.watch(this.generation));
      },
    });
  }

  private onEvent(event: unknown, generation: number): void {
    const e = (event ?? {}) as { type?: string; object?: Record<string, unknown> };
    const object = e.object ?? {};
    const metadata = (object.metadata ?? {}) as { name?: string; resourceVersion?: string };
    switch (e.type) {
      case 'ADDED':
      case 'MODIFIED': {
        const name = metadata.name ?? '';
        this.slices.set(name, object as EndpointSlice);
        this.noteVersion(metadata.resourceVersion);
        this.emitChanged([name]);
        return;
      }
      case 'DELETED': {
        const name = metadata.name ?? '';
        this.noteVersion(metadata.resourceVersion);
        if (this.slices.delete(name)) this.emitChanged([name]);
        return;
      }
      case 'BOOKMARK':
        this.noteVersion(metadata.resourceVersion);
        return;
      case 'ERROR': {
        const error = statusError(500, object);
        this.stream?.abort();
        this.stream = undefined;
        for (const listener of [...this.listeners]) this.tell(() => listener.watching?.(false));
        if (error.code === 410) this.relist(`watch ERROR event: ${error.message}`);
        else this.fail(error, () => this.watch(this.generation));
        return;
      }
      default:
        this.trace(`${this.label}: ignoring a watch event of type ${JSON.stringify(e.type)} (generation ${generation})`);
    }
  }

  private noteVersion(version: string | undefined): void {
    if (typeof version === 'string' && version !== '') this.resourceVersion = version;
  }

  /** The resourceVersion is too old for the server: list again, at once. */
  private relist(reason: string): void {
    const generation = ++this.generation;
    this.trace(`${this.label}: ${reason}; listing again`);
    void this.list(generation);
  }

  private fail(error: Error, retry: () => void): void {
    const generation = ++this.generation;
    const code = error instanceof KubeApiError ? error.code : 0;
    const kind = code === 401 ? 'unauthorized' : code === 403 ? 'forbidden' : 'other';
    const rotated = kind === 'unauthorized' && this.unauthorizedInARow++ === 0;
    const delayMs = rotated ? 0 : kind === 'other' ? this.backoff.next() : this.authBackoff.next();
    this.trace(`${this.label}: ${error.message}; retrying in ${delayMs} ms`);
    if (!rotated) {
      if (!this.listed) this.lastFailure = { kind, error };
      for (const listener of [...this.listeners]) this.tell(() => listener.failed({ kind, error }));
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.closed && generation === this.generation) retry();
    }, delayMs);
    this.timer.unref();
  }

  private emitChanged(names: readonly string[]): void {
    for (const listener of [...this.listeners]) this.tell(() => listener.changed(names));
  }

  /** A listener that throws must not end the watch (or, from a socket callback, the process). */
  private tell(call: () => void): void {
    try {
      call();
    } catch (err) {
      this.trace(`${this.label}: a listener threw: ${(err as Error)?.stack ?? String(err)}`);
    }
  }
}
