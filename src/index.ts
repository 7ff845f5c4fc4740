/**
 * grpc-etcd-lb: etcd service discovery, load balancing and retries for @grpc/grpc-js.
 * This file is the whole public surface.
 */
export * from './register';
export { type EtcdOptions } from './etcd/connection';
export { type EndpointRecord, EndpointDecodeError, encodeEndpointValue, decodeEndpoint, endpointKey } from './etcd/endpoint-codec';
export { type EndpointAttributes, ENDPOINT_ATTRIBUTES_KEY } from './balancer/endpoint-attributes';
