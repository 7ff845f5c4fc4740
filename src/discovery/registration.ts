/** The public contract of a server's registration, whatever the backend. */
import { type Disposer, type LostEvent, type RegisteredEvent, type RegistrationError } from './registration-events';
import { type EndpointUpdate } from './registration-options';

/** Where a registration stands. */
export type RegistrationState =
  /** Before the first put. */
  | 'registering'
  /** The key is written under a live lease (as far as etcd last told us). */
  | 'registered'
  /** Lost (see `onLost`): writing it again, with backoff. */
  | 'lost'
  | 'closed';

/** A registered endpoint. Obtained from `registerEndpoint`. */
export interface Registration {
  /** The service registered under. */
  readonly service: string;
  /** Canonical `host:port` / `[v6]:port`. */
  readonly address: string;
  /** The etcd key, `<service>/<address>`; in ZooKeeper the node's path, `<basePath>/<service>/<id>`; in Consul the service ID, `<service>:<address>`. */
  readonly key: string;
  /** The lease the key is (or was last) written under, decimal; ZooKeeper: the session (`0x…`); Consul: the TTL check (`service:<ID>`). Undefined when none is held. */
  readonly leaseId: string | undefined;
  /** Where the registration stands. */
  readonly state: RegistrationState;
  /**
   * ZooKeeper: the session timeout the server granted for `ttlSeconds` (it may clamp it),
   * i.e. how long the node outlives a dead process. Undefined for etcd.
   */
  readonly sessionTimeoutMs?: number;
  /** True when the registration reports grpc.health.v1 status (`health` was given). */
  readonly reportsHealth: boolean;
  /**
   * Changes weight, priority and/or metadata in place, under the same lease. Resolves once
   * the registry holds it; rejects on bad input, on `close()`, or after `registerTimeoutMs`
   * (the value stays wanted and is written when the registry answers again).
   */
  update(update: EndpointUpdate): Promise<void>;
  /**
   * Sets the health status (`''` and `service`). etcd and ZooKeeper: does not touch the registry (a no-op without
   * `health`); Consul: also fails (or passes) the registration's TTL check, so health queries drop it. A no-op after `close()`.
   */
  setServing(serving: boolean): void;
  /**
   * Removes the key (etcd: revokes the lease), sets health NOT_SERVING, releases the client.
   * Idempotent. Never rejects: past `closeTimeoutMs` it resolves, reports through `onError`,
   * and leaves the lease to expire after its TTL.
   */
  close(): Promise<void>;
  /** Called when the registration is lost (once per loss, before it is written again). */
  onLost(listener: (event: LostEvent) => void): Disposer;
  /** Called after each re-registration (not the first put: that is `registerEndpoint` resolving). */
  onRegistered(listener: (event: RegisteredEvent) => void): Disposer;
  /** Called on each failed etcd operation. With no listener, errors are only traced (`GRPC_TRACE=etcd_registry`). */
  onError(listener: (error: RegistrationError) => void): Disposer;
}
