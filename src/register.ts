// Placeholder, replaced by the resolver implementation (issue 4).
import { type EtcdOptions } from './etcd/connection';
import { registerBalancers } from './balancer/register-balancers';
import { registerEtcdResolver } from './resolver/etcd-resolver';

export interface RegisterOptions {
  /** Default etcd connection for `etcd:///svc` targets and registrations. Defaults to `ETCD_ENDPOINTS`. */
  etcd?: EtcdOptions;
}

/** Registers the `etcd` resolver scheme and every LB policy with grpc-js. Idempotent. */
export function register(_options: RegisterOptions = {}): void {
  registerEtcdResolver();
  registerBalancers();
}
