/**
 * The public contract of a server's registration (implemented by `EtcdRegistration`
 * and `ZkRegistration` on the discovery core's `RegistrationCore`, obtained from
 * `registerEndpoint`).
 */
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
  /** The etcd key, `<service>/<address>`; in ZooKeeper the node's path, `<basePath>/<service>/<id>`. */
  readonly key: string;
  /**
   * The lease the key is (or was last) written under, decimal; undefined when none is held.
   * ZooKeeper: the session holding the node (`0x…`).
   */
  readonly leaseId: string | undefined;
  /** Where the registration is in its life. */
  readonly state: RegistrationState;
  /**
   * ZooKeeper registrations: the session timeout the server granted for `ttlSeconds`
   * (clamped to its minSessionTimeout/maxSessionTimeout), i.e. how long the node outlives a
   * dead process. Undefined for etcd (its TTL is exactly `ttlSeconds`).
   */
  readonly sessionTimeoutMs?: number;
  /** True when the registration reports grpc.health.v1 status (`health` was given). */
  readonly reportsHealth: boolean;
  /**
   * Changes weight, priority and/or metadata in place, under the same lease
   * (draining: `{ weight: 0 }`; slow start: raise the weight in steps).
   * Resolves once etcd holds the new value; rejects on bad input, on `close()`,
   * or when etcd has not taken it within `registerTimeoutMs` (the new value
   * stays wanted and is written when etcd answers again).
   */
  update(update: EndpointUpdate): Promise<void>;
  /**
   * Sets the health status (for `''` and `service`) to SERVING or NOT_SERVING,
   * e.g. during warm-up or when a dependency is lost. Does not touch etcd. A
   * valid no-op without `health`, and after `close()`.
   */
  setServing(serving: boolean): void;
  /**
   * Revokes the lease, which deletes the key in the same etcd operation, sets
   * health NOT_SERVING and releases the etcd client. Idempotent. Never rejects:
   * when etcd does not answer within `closeTimeoutMs` it resolves anyway,
   * reports through `onError`, and leaves the lease to expire after its TTL.
   */
  close(): Promise<void>;
  /** Called when the registration is lost (once per loss, before it is written again). */
  onLost(listener: (event: LostEvent) => void): Disposer;
  /** Called after each re-registration (not the first put: that is `registerEndpoint` resolving). */
  onRegistered(listener: (event: RegisteredEvent) => void): Disposer;
  /** Called on each failed etcd operation. With no listener, errors are only traced (`GRPC_TRACE=etcd_registry`). */
  onError(listener: (error: RegistrationError) => void): Disposer;
}
