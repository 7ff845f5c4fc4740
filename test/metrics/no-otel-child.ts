/**
 * Runs in a child process for metrics-absent.test.ts: `@opentelemetry/api` made
 * unresolvable before anything loads, then the whole client path is used. Prints one JSON line.
 */
import Module from 'node:module';
// Types only (erased): the modules themselves are required after the hook below.
import type * as Index from '../../src/index';
import type * as Binding from '../../src/metrics/metrics-binding';
import type * as OtelApi from '../../src/metrics/otel-api';
import type * as EchoServerModule from '../support/echo-server';
import type * as ReplicasModule from '../interceptor/replicas';
import type * as EchoProto from '../support/echo-proto';
import { runChildMain } from '../support/ts-child';

const moduleWithResolver = Module as unknown as { _resolveFilename(request: string, ...rest: unknown[]): string };
const resolve = moduleWithResolver._resolveFilename;
moduleWithResolver._resolveFilename = function (request: string, ...rest: unknown[]): string {
  if (request === '@opentelemetry/api') throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
  return resolve.call(this, request, ...rest);
};

async function main(): Promise<unknown> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const lb = require('../../src/index') as typeof Index;
  const binding = require('../../src/metrics/metrics-binding') as typeof Binding;
  const { otelApi } = require('../../src/metrics/otel-api') as typeof OtelApi;
  const { startEchoServer } = require('../support/echo-server') as typeof EchoServerModule;
  const { clientFor } = require('../interceptor/replicas') as typeof ReplicasModule;
  const { unary } = require('../support/echo-proto') as typeof EchoProto;
  /* eslint-enable @typescript-eslint/no-require-imports */
  lb.register({ metrics: { perEndpoint: true } });
  const server = await startEchoServer({ name: 'solo' });
  const client = clientFor(`ipv4:${server.address}`, 'etcd_peak_ewma', [lb.createRetryInterceptor()]);
  try {
    const reply = await unary(client, 'x', { deadline: Date.now() + 5000 });
    return { server: reply.server, apiLoaded: otelApi() !== null, metrics: binding.currentMetrics(), activeCalls: lb.inspectBalancers()[0]?.endpoints[0]?.activeCalls };
  } finally {
    client.close();
    server.forceStop();
  }
}

runChildMain(main);
