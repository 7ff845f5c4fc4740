/**
 * Errors from etcd calls in user terms: etcd3 wraps the cause in grpc-js's pick_first text
 * and later in cockatiel's "circuit breaker is open", which only repeats an earlier failure.
 */
import { BrokenCircuitError } from 'cockatiel';
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';

export interface EtcdFailure {
  /** The cause, short: `connect ECONNREFUSED 127.0.0.1:2379`, `etcdserver: authentication failed`. */
  readonly cause: string;
  /** True when etcd could not be reached (or did not answer); false when it answered with an error. */
  readonly unreachable: boolean;
}

const CIRCUIT_OPEN = 'Execution prevented because the circuit breaker is open';
/** A gRPC server that is not etcd answers etcd's methods with UNIMPLEMENTED. */
const NOT_ETCD = /does not implement the method \/etcdserverpb\.|^12 UNIMPLEMENTED: .*etcdserverpb/;
const NO_CONNECTION = /No connection established\. Last error: (?:Error: )?([\s\S]*?)(?:\. Resolution note: [\s\S]*)?$/;

/** The cause of a failed call, or undefined for etcd3's open-breaker error (keep the earlier cause). */
export function describeEtcdFailure(err: unknown): EtcdFailure | undefined {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof BrokenCircuitError || message === CIRCUIT_OPEN) return undefined;
  const noConnection = NO_CONNECTION.exec(message);
  // grpc-js says 'Last error: null' for a subchannel that failed before this channel used it.
  if (noConnection) return { cause: noConnection[1] === 'null' || noConnection[1] === '' ? 'no connection established' : noConnection[1], unreachable: true };
  if (err instanceof GRPCDeadlineExceededError || /DEADLINE_EXCEEDED|did not answer within/.test(message)) {
    return { cause: 'no answer before the deadline', unreachable: true };
  }
  // grpc-js status text: "14 UNAVAILABLE: details".
  const withoutCode = message.replace(/^\d+ [A-Z_]+: /, '');
  if (NOT_ETCD.test(message)) {
    return { cause: `${withoutCode} (this server answers gRPC but is not etcd: check the etcd hosts, or ETCD_ENDPOINTS)`, unreachable: false };
  }
  if (err instanceof GRPCUnavailableError || /^14 UNAVAILABLE: /.test(message)) return { cause: withoutCode, unreachable: true };
  return { cause: withoutCode, unreachable: false };
}

/** `HH:MM:SS` UTC of a timestamp (the date adds nothing to "since" in an error line). */
export function clockTime(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}
