/**
 * What a discovery backend plugs into the core; the core does the resolver, the
 * connection options and the self-healing registration. See docs/backends.md.
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

  /** Validates connection options; throws a TypeError naming `component` and the bad value. */
  validateConnection(options: Options, component: string): Connection;
  /** Stable identity of a connection: equal keys are the same cluster with the same settings. */
  connectionKey(connection: Connection): string;
  /** The process-wide default connection (`register()`'s, else the backend's environment variable), or undefined. */
  defaultConnection(): Connection | undefined;
  /** Called by `register()` once, after validation. */
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
  /** A reference on the watch of `service` on `connection`, shared by channels. */
  acquireWatch(connection: Connection, service: string, options: ResolvedResolverOptions): WatchLease<DiscoveryWatch>;
  /** The resolution note of a non-empty list (`etcd service 'x' at revision 12`). */
  describeList(service: string, revision: number): string;
  /** Extra channel attributes for the policies of a target (the etcd client registry), computed once per channel. */
  channelAttributes?(connection: Connection, service: string): ChannelOptions;

  /**
   * Starts registering an endpoint on `connection`; the core awaits its first write. Absent
   * when the registry registers endpoints itself (Kubernetes): `registerEndpoint()` then
   * refuses this backend, saying `connectionHint`.
   */
  createRegistration?(options: ResolvedRegistrationOptions, connection: Connection): RegistrationCore;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyBackend = DiscoveryBackend<string, any, any, any>;

/** The connection options type of a backend. */
export type BackendOptionsOf<B> = B extends DiscoveryBackend<string, infer O, infer _C, infer _T> ? O : never;
