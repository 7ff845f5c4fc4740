/**
 * `createIdempotencyInterceptor()`: the server half of idempotency keys. Each unary call
 * carrying a key runs at most once per key while its result is kept (keyed-server-call.ts
 * has the rules); calls without a key, streams and methods not named pass through.
 */
import { ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import { tracer } from '../common/grpc-experimental';
import { WarningLimiter } from '../common/warning-limiter';
import { resolveIdempotencyOptions, type IdempotencyInterceptorOptions } from './idempotency-options';
import { KeyedServerCall, type KeyedCallScope } from './keyed-server-call';

const trace = tracer('etcd_idempotency');

/**
 * Returns a grpc-js server interceptor (grpc-js ≥ 1.10, server option `interceptors`) that
 * deduplicates unary calls by idempotency key, with a store shared by the replicas:
 * - first sight of a key: claims it atomically, runs the handler, records the final
 *   result (status, details, response message, trailers, a hash of the request), replies;
 * - the key is running elsewhere (a hedge, a retry after a client-side timeout): waits for
 *   its result until the call's deadline and replays it; if the owner dies (its claim
 *   lapses), the waiting attempt claims the key and runs the handler;
 * - a recorded key: replays the result exactly (same status, details, message, trailers)
 *   with `idempotency-replayed: true` added to the trailers, without running the handler;
 * - the same key with a different request: INVALID_ARGUMENT naming the key;
 * - a retryable result (UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED) is not recorded: the
 *   claim is released so a retry runs the handler again;
 * - the store unreachable: UNAVAILABLE without running the handler, or with `failOpen`
 *   the handler runs without deduplication.
 * The handler sees the key in the call metadata (`call.metadata.get('idempotency-key')`):
 * a handler writing to its own database can store it in the same transaction.
 *
 * Interceptors listed before this one in `interceptors` are nearer the network: they see
 * replays and every status this one sends. Guarantee and limits: docs/idempotency.md.
 *
 * @throws TypeError naming the option and value when `options` is invalid.
 */
export function createIdempotencyInterceptor(options: IdempotencyInterceptorOptions): ServerInterceptor {
  const warnings = new WarningLimiter('grpc-etcd-lb idempotency interceptor');
  const scope: KeyedCallScope = {
    options: resolveIdempotencyOptions(options, text => warnings.warn(text)),
    warn: text => warnings.warn(text),
    trace: text => {
      if (trace.enabled) trace(text);
    },
  };
  return (methodDescriptor, call) => {
    if (methodDescriptor.requestStream || methodDescriptor.responseStream || !scope.options.methods(methodDescriptor.path)) {
      return new ServerInterceptingCall(call);
    }
    const keyed = new KeyedServerCall(scope, methodDescriptor.path, methodDescriptor.responseSerialize, call);
    return new ServerInterceptingCall(call, {
      start: next => next(keyed.listener),
      sendMessage: (message, next) => keyed.sendMessage(message, next),
      sendStatus: (status, next) => keyed.sendStatus(status, next),
    });
  };
}
