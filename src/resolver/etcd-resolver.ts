// Placeholder, replaced by the resolver implementation (issue 4).
/** Registers the `etcd` resolver scheme with grpc-js. Idempotent. */
export function registerEtcdResolver(): void {}
