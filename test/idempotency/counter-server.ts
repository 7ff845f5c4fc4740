/**
 * A counter service for the idempotency tests, on the echo proto: each Unary call is one
 * execution (counted per idempotency key); the reply carries the replica name and the
 * execution number. Behind `createIdempotencyInterceptor`, plus an optional interceptor
 * nearer the network (`outer`, e.g. one that loses responses).
 */
import * as grpc from '@grpc/grpc-js';
import { createIdempotencyInterceptor, type IdempotencyInterceptorOptions } from '../../src';
import { loadEcho, type EchoReply, type EchoRequest } from '../support/echo-proto';

export const UNARY_PATH = '/grpc_etcd_lb.echo.Echo/Unary';

/** What the handler does with a call (after counting it): reply, fail, or wait for a release. */
export type CounterAction =
  | { kind: 'reply'; headers?: Record<string, string> }
  | { kind: 'fail'; code: grpc.status; details: string; trailers?: Record<string, string> }
  | { kind: 'hold'; until: Promise<void> };

export interface CounterServer {
  readonly server: grpc.Server;
  readonly address: string;
  readonly name: string;
  /** Executions of the handler per idempotency key ('' for calls without one). */
  readonly executions: Map<string, number>;
  /** Total handler executions. */
  total(): number;
  stop(): Promise<void>;
}

export interface CounterServerOptions {
  name: string;
  idempotency?: IdempotencyInterceptorOptions;
  /** Interceptors nearer the network than the idempotency one. */
  outer?: grpc.ServerInterceptor[];
  /** Decides each call's fate (defaults to replying). */
  action?: (request: EchoRequest, key: string, execution: number) => CounterAction;
}

export async function startCounterServer(options: CounterServerOptions): Promise<CounterServer> {
  const { service } = loadEcho();
  const interceptors = [...(options.outer ?? []), ...(options.idempotency ? [createIdempotencyInterceptor(options.idempotency)] : [])];
  const server = new grpc.Server({ interceptors });
  const executions = new Map<string, number>();
  server.addService(service, {
    Unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, callback: grpc.sendUnaryData<EchoReply>) => {
      const key = String(call.metadata.get('idempotency-key')[0] ?? '');
      const execution = (executions.get(key) ?? 0) + 1;
      executions.set(key, execution);
      const action = options.action?.(call.request, key, execution) ?? { kind: 'reply' };
      const reply = (): void => callback(null, { message: call.request.message ?? '', server: options.name, index: execution });
      if (action.kind === 'reply') {
        if (action.headers) {
          const headers = new grpc.Metadata();
          for (const [k, v] of Object.entries(action.headers)) headers.set(k, v);
          call.sendMetadata(headers);
        }
        reply();
      } else if (action.kind === 'fail') {
        const metadata = new grpc.Metadata();
        for (const [k, v] of Object.entries(action.trailers ?? {})) metadata.set(k, v);
        callback({ code: action.code, details: action.details, metadata });
      } else {
        void action.until.then(reply);
      }
    },
    ServerStream: (call: grpc.ServerWritableStream<EchoRequest, EchoReply>) => call.end(),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    server,
    address: `127.0.0.1:${port}`,
    name: options.name,
    executions,
    total: () => [...executions.values()].reduce((a, b) => a + b, 0),
    stop: () => new Promise<void>(resolve => {
      server.tryShutdown(() => resolve());
      setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 500).unref();
    }),
  };
}

/** An interceptor (put it nearer the network) that turns a share of OK answers into UNAVAILABLE after the handler ran. */
export function losingInterceptor(shouldLose: () => boolean, onLost?: () => void): grpc.ServerInterceptor {
  return (_descriptor, call) => new grpc.ServerInterceptingCall(call, {
    sendStatus: (status, next) => {
      if (status.code === grpc.status.OK && shouldLose()) {
        onLost?.();
        next({ code: grpc.status.UNAVAILABLE, details: 'response lost (test)', metadata: new grpc.Metadata() });
      } else {
        next(status);
      }
    },
  });
}

export interface CallOutcome {
  readonly code: grpc.status;
  readonly details: string;
  readonly reply: EchoReply | undefined;
  /** Response headers, when any were sent. */
  readonly headers: grpc.Metadata | undefined;
  readonly trailers: grpc.Metadata | undefined;
}

/** One unary call; resolves with its status, reply, headers and trailers (never rejects). */
export function callCounter(client: grpc.Client, message: string, metadata = new grpc.Metadata(), deadlineMs = 10_000): Promise<CallOutcome> {
  return new Promise(resolve => {
    let reply: EchoReply | undefined;
    const c = client as unknown as {
      unary(req: EchoRequest, md: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<EchoReply>): grpc.ClientUnaryCall;
    };
    // grpc-js calls back before it emits 'status' (which carries the trailers).
    const call = c.unary({ message }, metadata, { deadline: Date.now() + deadlineMs }, (err, value) => {
      if (!err) reply = value;
    });
    let headers: grpc.Metadata | undefined;
    call.on('metadata', (m: grpc.Metadata) => { headers = m; });
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details, reply, headers, trailers: s.metadata }));
  });
}

/** Metadata carrying `key` in the idempotency header. */
export function withKey(key: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('idempotency-key', key);
  return metadata;
}
