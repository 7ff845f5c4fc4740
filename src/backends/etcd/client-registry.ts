/**
 * The etcd `ClientRegistrySource`. The first subscription per (connection, service)
 * announces this process under a self-healing lease and watches the live clients;
 * the last `release()` ends both. Without rights on the prefix it logs one ERROR and
 * answers no view, so policies keep their fallback.
 */
import { EtcdPermissionDeniedError } from 'etcd3';
import { acquireEtcdClient, connectionKey, normalizeHosts, type EtcdClientLease, type EtcdOptions } from './connection';
import { log, logVerbosity, tracer } from '../../common/grpc-experimental';
import { getLocality } from '../../discovery/locality';
import { EtcdRegistration } from './etcd-registration';
import { type RegistrationError } from '../../discovery/registration-events';
import { type ResolvedResolverOptions } from '../../discovery/resolver-options';
import { RESOLVER_POOL_NAME, resolverClientOptions } from './service-watch-registry';
import { type ClientRegistrySource, type ClientRegistrySubscription, type ClientRegistryView } from '../../discovery/client-registry-source';
import { encodeClientValue, clientRegistryPrefix, newClientId } from './client-registry-keys';
import { ClientRegistryWatch } from './client-registry-watch';

const trace = tracer('etcd_client_registry');

/** Lease TTL of a client's announcement: a crashed client leaves the others' counts within about this long. */
export const DEFAULT_CLIENT_TTL_SECONDS = 5;

interface Subscriber {
  readonly onChange: (view: ClientRegistryView) => void;
  released: boolean;
}

/** One announcement and one watch per (connection, service). */
class ClientRegistryEntry {
  readonly clientId = newClientId();
  private readonly subscribers = new Set<Subscriber>();
  private readonly registration: EtcdRegistration;
  private readonly watchClient: EtcdClientLease;
  private readonly watch: ClientRegistryWatch;
  private current: ClientRegistryView | undefined;
  private denied = false;
  private pending: NodeJS.Immediate | undefined;

  constructor(private readonly key: string, readonly service: string, connection: EtcdOptions, options: ResolvedResolverOptions) {
    const prefix = clientRegistryPrefix(service);
    const announcementKey = `${prefix}${this.clientId}`;
    this.registration = new EtcdRegistration({
      service,
      address: this.clientId,
      weight: 1,
      priority: 0,
      metadata: {},
      ttlSeconds: DEFAULT_CLIENT_TTL_SECONDS,
      registerTimeoutMs: 10_000,
      closeTimeoutMs: 2_000,
      health: undefined,
    }, connection, { key: announcementKey, value: encodeClientValue(this.clientId, getLocality()?.zone) });
    this.registration.onError(err => this.announcementFailed(err));
    this.watchClient = acquireEtcdClient(resolverClientOptions(connection, options), RESOLVER_POOL_NAME);
    this.watch = new ClientRegistryWatch(prefix, this.clientId, this.watchClient.client, options, {
      changed: view => this.publish(view),
      denied: err => this.deny(err, 'list'),
    });
    this.watch.start();
    trace(`${service}: announcing client ${this.clientId} at ${normalizeHosts(connection.hosts).join(',')}`);
  }

  get view(): ClientRegistryView | undefined {
    return this.denied ? undefined : this.current;
  }

  add(subscriber: Subscriber): void {
    this.subscribers.add(subscriber);
  }

  remove(subscriber: Subscriber): boolean {
    this.subscribers.delete(subscriber);
    return this.subscribers.size === 0;
  }

  close(): void {
    if (this.pending) clearImmediate(this.pending);
    this.watch.close();
    this.watchClient.release();
    void this.registration.close();
    entries.delete(this.key);
    trace(`${this.service}: client ${this.clientId} withdrawn`);
  }

  private publish(view: ClientRegistryView): void {
    if (this.denied) return;
    this.current = view;
    // Subscribers hear once per tick, never inside subscribe().
    this.pending ??= setImmediate(() => {
      this.pending = undefined;
      const latest = this.current;
      if (latest === undefined || this.denied) return;
      for (const s of [...this.subscribers]) {
        if (s.released) continue;
        try {
          s.onChange(latest);
        } catch (err) {
          trace(`${this.service}: a subscriber threw: ${(err as Error)?.message}`);
        }
      }
    });
  }

  private announcementFailed(err: RegistrationError): void {
    if (err.cause instanceof EtcdPermissionDeniedError) this.deny(err.cause, err.operation);
  }

  /** No rights: one ERROR, stop writing and watching, answer no view from now on. */
  private deny(err: Error, operation: string): void {
    if (this.denied) return;
    this.denied = true;
    this.current = undefined;
    this.watch.close();
    void this.registration.close();
    log(logVerbosity.ERROR, `client registry: the etcd credentials lack readwrite on '${clientRegistryPrefix(this.service)}' ` +
      `(${operation} refused: ${err.message}); service '${this.service}' goes on without client counts (etcd_subset: random subsetting). ` +
      'Grant the client\'s etcd user readwrite on that prefix to enable them.');
  }
}

const entries = new Map<string, ClientRegistryEntry>();

/** The source of `service` on `connection`; creating it does nothing until a subscription. */
export function clientRegistrySource(connection: EtcdOptions, service: string, options: () => ResolvedResolverOptions): ClientRegistrySource {
  return {
    subscribe(onChange: (view: ClientRegistryView) => void): ClientRegistrySubscription {
      const resolved = options();
      const key = `${connectionKey(resolverClientOptions(connection, resolved), RESOLVER_POOL_NAME)}\n${service}`;
      let entry = entries.get(key);
      if (entry === undefined) {
        entry = new ClientRegistryEntry(key, service, connection, resolved);
        entries.set(key, entry);
      }
      const held = entry;
      const subscriber: Subscriber = { onChange, released: false };
      held.add(subscriber);
      return {
        get view() {
          return subscriber.released ? undefined : held.view;
        },
        release() {
          if (subscriber.released) return;
          subscriber.released = true;
          if (held.remove(subscriber)) held.close();
        },
      };
    },
  };
}

/** Live announcements of this process (leak tests, diagnostics). */
export function activeClientRegistryCount(): number {
  return entries.size;
}
