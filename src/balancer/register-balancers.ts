// Placeholder, replaced by the balancer implementation (issue 5).
/** Registers every `etcd_*` LB policy with grpc-js. Idempotent. */
export function registerBalancers(): void {}
