/**
 * grpc-etcd-lb: etcd service discovery, load balancing and retries for @grpc/grpc-js.
 * This file is the whole public surface.
 */
export * from './register';
export { type EtcdOptions } from './backends/etcd/connection';
export { type ZookeeperOptions, DEFAULT_ZOOKEEPER_BASE_PATH } from './backends/zookeeper/connection';
export { type KubernetesOptions } from './backends/kubernetes/connection';
export { type ConsulOptions, DEFAULT_CONSUL_ADDRESS, DEFAULT_DEREGISTER_CRITICAL_AFTER_SECONDS } from './backends/consul/connection';
export { type Locality } from './discovery/locality';
export { type EndpointRecord, type DecodeResult } from './discovery/endpoint-record';
export { type HostPort } from './discovery/address';
export { EndpointDecodeError, encodeEndpointValue, decodeEndpoint, endpointKey } from './backends/etcd/endpoint-codec';
export { type EndpointAttributes, ENDPOINT_ATTRIBUTES_KEY } from './discovery/endpoint-attributes';
export { type Registration, type RegistrationState } from './discovery/registration';
export { type EndpointRegistrationOptions, type EndpointUpdate, type HealthStatusSetter, type ServingStatus, DEFAULT_REGISTRATION_OPTIONS } from './discovery/registration-options';
export { type LostEvent, type LostReason, type RegisteredEvent, type Disposer, RegistrationError } from './discovery/registration-events';
export * from './server/graceful-shutdown';
export * from './server/shutdown-on-signals';
export { createRetryInterceptor } from './interceptor/retry-interceptor';
export { type RetryOptions, type RetryEvent, DEFAULT_RETRY_OPTIONS } from './interceptor/retry-options';
export { type HedgingOptions, type HedgeEvent, type HedgeReason, DEFAULT_HEDGING_OPTIONS } from './interceptor/hedging-options';
export { type ResolverOptions, type ResolvedResolverOptions, DEFAULT_RESOLVER_OPTIONS } from './discovery/resolver-options';
export { inspectBalancers, type BalancerSnapshot, type EndpointSnapshot, type ZoneRoutingSnapshot } from './balancer/pool/balancer-diagnostics';
export { type HealthCheckConfig, DEFAULT_ROUTING_OPTIONS } from './balancer/policies/policy-config';
export { type TagRoutingConfig } from './balancer/tiers/tag-split';
export { type RingHashOptions, DEFAULT_RING_HASH_OPTIONS } from './balancer/policies/ring-hash';
export { type SlowStartConfig, DEFAULT_SLOW_START_AGGRESSION, DEFAULT_SLOW_START_MIN_WEIGHT_PERCENT } from './balancer/pool/slow-start';
export { type PeakEwmaOptions, DEFAULT_PEAK_EWMA_OPTIONS } from './balancer/policies/peak-ewma';
export { type MetricsOptions, type ResolvedMetricsOptions, DEFAULT_METRICS_OPTIONS } from './metrics/metrics-options';
export { type EndpointHealth } from './balancer/pool/balancer-diagnostics';
export { loadReportServerOptions, createLoadReporter, LoadReporter, type LoadReportOptions, type LoadSnapshot, ORCA_LOAD_REPORT_HEADER, DEFAULT_LOAD_REPORT_OPTIONS } from './server/load-reporter';
export { type OrcaLoadReport, encodeOrcaLoadReport, decodeOrcaLoadReport } from './server/orca-load-report';
export { type IdempotencyKeysOptions } from './interceptor/idempotency-keys';
export { DEFAULT_IDEMPOTENCY_KEY_HEADER } from './common/idempotency-key-header';
export { createIdempotencyInterceptor } from './idempotency/idempotency-interceptor';
export { type IdempotencyInterceptorOptions, DEFAULT_IDEMPOTENCY_INTERCEPTOR_OPTIONS } from './idempotency/idempotency-options';
export { type IdempotencyStore, type IdempotencyClaim, type IdempotencyClaimOutcome, type IdempotencyResult } from './idempotency/idempotency-store';
export { createMemoryIdempotencyStore } from './idempotency/memory-store';
export { createEtcdIdempotencyStore, type EtcdIdempotencyStoreOptions, DEFAULT_ETCD_IDEMPOTENCY_STORE_OPTIONS } from './idempotency/etcd-store';
export { REPLAYED_TRAILER } from './idempotency/result-encoding';
