/**
 * `createIdempotencyInterceptor()`: the server half of idempotency keys; the per-call
 * rules are in keyed-server-call.ts.
 */
import { ServerInterceptingCall, type ServerInterceptor } from '@grpc/grpc-js';
import { tracer } from '../common/grpc-experimental';
import { WarningLimiter } from '../common/warning-limiter';
import { resolveIdempotencyOptions, type IdempotencyInterceptorOptions } from './idempotency-options';
import { KeyedServerCall, type KeyedCallScope } from './keyed-server-call';

const trace = tracer('etcd_idempotency');

/**
 * Returns a grpc-js server interceptor (grpc-js ≥ 1.10, server option `interceptors`) that
 * runs each unary call carrying an idempotency key at most once per key, across the
 * replicas sharing `options.store`: the first attempt claims the key, runs the handler and
 * records its final result; an attempt that finds the key running waits for the result
 * until its deadline (claiming the key itself if the owner dies); a recorded result is
 * replayed exactly, plus `idempotency-replayed: true` in the trailers. The same key with a
 * different request gets INVALID_ARGUMENT; a retryable result (UNAVAILABLE,
 * RESOURCE_EXHAUSTED, ABORTED) is not recorded; an unreachable store gives UNAVAILABLE, or
 * with `failOpen` runs the handler undeduplicated. Calls without a key, streams and
 * methods `methods` does not name pass through. The handler sees the key in
 * `call.metadata`. Interceptors listed before this one see its replays and statuses.
 * Guarantee and limits: docs/idempotency.md.
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
      sendMetadata: (metadata, next) => keyed.sendMetadata(metadata, next),
      sendMessage: (message, next) => keyed.sendMessage(message, next),
      sendStatus: (status, next) => keyed.sendStatus(status, next),
    });
  };
}
