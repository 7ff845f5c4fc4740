/**
 * A friendlier word for a common mistake: a channel made before `register()` gets
 * grpc-js's DNS resolver for `etcd:///svc` (an unknown scheme falls back to `dns:`),
 * whose only complaint is `Failed to parse DNS address dns:etcd:///svc`.
 */
import { status, type StatusObject } from '@grpc/grpc-js';

const DNS_PARSE_FAILURE = 'Failed to parse DNS address ';
/** With an authority (`zk://host:2181/svc`) grpc-js's DNS resolver fails this way instead. */
const DNS_RESOLUTION_FAILURE = 'Name resolution failed for target dns:';
const OUR_TARGET = /^(?:dns:)?(?:etcd|zk|kubernetes|consul):/;
/** Our scheme behind grpc-js's `dns:` fallback: certainly not resolved by us. */
const OUR_TARGET_BEHIND_DNS = /^dns:(?:etcd|zk|kubernetes|consul):/;

/**
 * Whether `attemptStatus` is grpc-js's DNS resolver failing on a target of ours (`etcd:`,
 * `zk:`, `kubernetes:`, `consul:`, or those behind `dns:`): our scheme was not registered when the channel was made.
 */
export function isUnregisteredTarget(target: string, attemptStatus: StatusObject): boolean {
  if (attemptStatus.code !== status.UNAVAILABLE) return false;
  const details = attemptStatus.details;
  return (details.startsWith(DNS_PARSE_FAILURE) && OUR_TARGET.test(target))
    || (details.startsWith(DNS_RESOLUTION_FAILURE) && OUR_TARGET_BEHIND_DNS.test(target));
}

/** What the log says, once per interceptor and target. */
export function unregisteredTargetMessage(target: string): string {
  return `grpc-etcd-lb: calls to ${target} fail in grpc-js's DNS resolver: `
    + 'register() must be called before creating the channel (a channel made earlier resolves the target with DNS)';
}
