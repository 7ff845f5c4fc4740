/**
 * Runs in a child process for test/register.test.ts: register() configures the
 * whole process once, so each scenario gets a fresh process. Prints one JSON line.
 */
import * as grpc from '@grpc/grpc-js';
import { register } from '../../../src/register';
import { loadEcho, unary } from '../../support/echo-proto';
import { ROUND_ROBIN_SERVICE_CONFIG } from './resolver-fixtures';
import { runChildMain } from '../../support/ts-child';

async function call(target: string): Promise<{ server?: string; code?: number; details?: string }> {
  const { Client } = loadEcho();
  const client = new Client(target, grpc.credentials.createInsecure(), { 'grpc.service_config': ROUND_ROBIN_SERVICE_CONFIG });
  try {
    return { server: (await unary(client, 'x', { deadline: Date.now() + 5000 })).server };
  } catch (err) {
    return { code: (err as grpc.ServiceError).code, details: (err as grpc.ServiceError).details };
  } finally {
    client.close();
  }
}

function errorOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

async function main(): Promise<unknown> {
  const etcd = process.env.TEST_ETCD ?? '';
  const service = process.env.TEST_SERVICE ?? 'svc';
  switch (process.env.SCENARIO) {
    case 'default-connection': {
      register({ etcd: { hosts: [etcd] } });
      register();
      register({ etcd: { hosts: etcd } });
      return {
        conflict: errorOf(() => register({ etcd: { hosts: ['127.0.0.1:1'] } })),
        badOptions: errorOf(() => register({ etcd: { hosts: [] } })),
        resolverConflict: errorOf(() => { register({ resolver: { pageSize: 10 } }); register({ resolver: { pageSize: 20 } }); }),
        metricsRepeat: errorOf(() => { register({ metrics: { perEndpoint: true } }); register({ metrics: { perEndpoint: true } }); register(); }),
        metricsConflict: errorOf(() => register({ metrics: {} })),
        viaDefault: await call(`etcd:///${service}`),
        viaHosts: await call(`etcd://${etcd}/${service}`),
      };
    }
    case 'env':
      register();
      return { viaEnv: await call(`etcd:///${service}`) };
    case 'no-connection':
      register();
      return {
        noConnection: await call(`etcd:///${service}`),
        badTarget: errorOf(() => new grpc.Channel('etcd:///bad//name', grpc.credentials.createInsecure(), {})),
      };
    default:
      throw new Error(`unknown SCENARIO ${process.env.SCENARIO}`);
  }
}

runChildMain(main);
