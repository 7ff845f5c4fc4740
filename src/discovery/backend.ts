/**
 * What a discovery backend plugs into the core. A backend is a folder under
 * src/backends/ exporting one `DiscoveryBackend`; src/backends/index.ts lists them.
 * The core does the rest: the grpc-js resolver (last good list, coalescing, what
 * policies receive), `register()`'s connection options and `registerEndpoint()`'s
 * choice of registry and self-healing loop. docs/backends.md walks through etcd and
 * ZooKeeper as examples.
 */
import { type ChannelOptions } from '@grpc/grpc-js';
import { type GrpcUri } from '../common/grpc-experimental';
import { type DiscoveryWatch } from './discovery-watch';
import { type RegistrationCore } from './registration-core';
import { type ResolvedRegistrationOptions } from './registration-options';
import { type ResolvedResolverOptions } from './resolver-options';
import { type WatchLease } from './shared-watches';

/** A parsed target: what every backend's target names. */
export interface BackendTarget {
  /** The service followed. */
  readonly service: string;
  /** A valid HTTP/2 `:authority` for the channel. */
  readonly authority: string;
}

/**
 * @typeParam Name the `register()` / `registerEndpoint()` option key of its connection (`'etcd'`).
 * @typeParam Options the connection options as users write them.
 * @typeParam Connection the connection after validation.
 * @typeParam Target a parsed target.
 */
export interface DiscoveryBackend<Name extends string = string, Options = unknown, Connection = unknown, Target extends BackendTarget = BackendTarget> {
  /** Option key of the connection in `register()` and `registerEndpoint()`; also names the backend in messages (`etcd resolver: …`). */
  readonly name: Name;
  /** The target scheme registered with grpc-js (`etcd` for `etcd:///svc`). */
  readonly scheme: string;

  /** Validates connection options; throws a TypeError starting with `component` and naming the bad value. */
  validateConnection(options: Options, component: string): Connection;
  /** Stable identity of a connection: equal keys are the same cluster with the same settings. */
  connectionKey(connection: Connection): string;
  /** The process-wide default connection (`register()`'s, else the backend's environment variable), or undefined. */
  defaultConnection(): Connection | undefined;
  /** Sets the default connection (called by `register()` once, after validation). */
  setDefaultConnection(connection: Connection): void;
  /** A target using explicit hosts, for messages (`etcd://127.0.0.1:2379/<service>`). */
  readonly targetExample: string;
  /** How a user gives this backend a connection, for the error when none is set. */
  readonly connectionHint: string;
  /** Names the default connection in messages (`an etcd default (register({ etcd }) or ETCD_ENDPOINTS)`). */
  readonly defaultDescription: string;

  /** Parses a target of `scheme`; throws an Error naming the target and the expected form. */
  parseTarget(uri: GrpcUri): Target;
  /** The connection a parsed target uses, or why there is none (a message). */
  connectionForTarget(target: Target): Connection | string;
  /** A reference on the shared list + watch of `service` on `connection` (one per connection and service, shared by channels). */
  acquireWatch(connection: Connection, service: string, options: ResolvedResolverOptions): WatchLease<DiscoveryWatch>;
  /** The resolution note of a non-empty list (`etcd service 'x' at revision 12`). */
  describeList(service: string, revision: number): string;
  /** Extra channel attributes for the policies of a target (the etcd client registry), computed once per channel. */
  channelAttributes?(connection: Connection, service: string): ChannelOptions;

  /** Starts registering an endpoint on `connection`; the core awaits its first write and hands it to the caller. */
  createRegistration(options: ResolvedRegistrationOptions, connection: Connection): RegistrationCore;
}

/** Any backend, for lists. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyBackend = DiscoveryBackend<string, any, any, any>;

/** The connection options type of a backend. */
export type BackendOptionsOf<B> = B extends DiscoveryBackend<string, infer O, infer _C, infer _T> ? O : never;
