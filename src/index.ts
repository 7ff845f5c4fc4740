/**
 * grpc-etcd-lb: etcd service discovery, load balancing and retries for @grpc/grpc-js.
 * This file is the whole public surface.
 */
export {};
