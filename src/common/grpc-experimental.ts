/**
 * The one place that touches grpc-js's `experimental` API (pinned to ~1.14: it
 * changed shape between 1.13 and 1.14). Everything else imports from here.
 */
import { experimental, logVerbosity } from '@grpc/grpc-js';

export const {
  trace,
  log,
  registerResolver,
  registerLoadBalancerType,
  isLoadBalancerNameRegistered,
  createChildChannelControlHelper,
  selectLbConfigFromList,
  parseLoadBalancingConfig,
  LeafLoadBalancer,
  ChildLoadBalancerHandler,
  QueuePicker,
  UnavailablePicker,
  BaseSubchannelWrapper,
  statusOrFromValue,
  statusOrFromError,
  subchannelAddressToString,
  endpointToString,
  uriToString,
  splitHostPort,
  durationToMs,
  EndpointMap,
  BackoffTimeout,
  SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX,
} = experimental;

export const PickResultType = experimental.PickResultType;

export type Resolver = experimental.Resolver;
export type ResolverListener = experimental.ResolverListener;
export type GrpcUri = experimental.GrpcUri;
/** What `registerResolver` takes (grpc-js does not export the interface by name). */
export type ResolverConstructor = Parameters<typeof experimental.registerResolver>[1];
export type LoadBalancer = experimental.LoadBalancer;
export type TypedLoadBalancingConfig = experimental.TypedLoadBalancingConfig;
export type ChannelControlHelper = experimental.ChannelControlHelper;
export type Picker = experimental.Picker;
export type PickArgs = experimental.PickArgs;
export type PickResult = experimental.PickResult;
export type Endpoint = experimental.Endpoint;
export type SubchannelAddress = experimental.SubchannelAddress;
export type SubchannelInterface = experimental.SubchannelInterface;
export type StatusOr<T> = experimental.StatusOr<T>;
export type LeafLoadBalancerInstance = InstanceType<typeof experimental.LeafLoadBalancer>;
/** grpc-js's concrete subchannel (what `getRealSubchannel()` returns): data producers (ORCA, health) live on it. */
export type RealSubchannel = ReturnType<experimental.SubchannelInterface['getRealSubchannel']>;
/** Per-wrapper hook into a subchannel's data producer (`BaseSubchannelWrapper.addDataWatcher`). */
export type DataWatcher = Parameters<experimental.SubchannelInterface['addDataWatcher']>[0];
export type ConnectivityStateListener = experimental.ConnectivityStateListener;

export { logVerbosity };

/** A tracer function; `enabled` lets callers skip building long texts nobody will see. */
export interface Tracer {
  (text: string): void;
  readonly enabled: boolean;
}

/** Whether grpc-js traces `component`: its `isTracerEnabled` rule (not exported), on the same variables. */
function traceEnabled(component: string): boolean {
  const names = (process.env.GRPC_NODE_TRACE ?? process.env.GRPC_TRACE ?? '').split(',').map(n => n.trim());
  if (names.includes(`-${component}`)) return false;
  return names.includes(component) || names.includes('all');
}

/** A tracer bound to one component name, enabled with `GRPC_TRACE=<name>` and `GRPC_VERBOSITY=DEBUG`. */
export function tracer(component: string): Tracer {
  return Object.assign((text: string) => trace(logVerbosity.DEBUG, component, text), { enabled: traceEnabled(component) });
}
