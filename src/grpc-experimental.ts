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

/** A tracer bound to one component name, enabled with `GRPC_TRACE=<name>`. */
export function tracer(component: string): (text: string) => void {
  return text => trace(logVerbosity.DEBUG, component, text);
}
