/**
 * Child process of etcd-tls-auth.test.ts: `register({ etcd })` is process-wide,
 * so each etcd connection (right or wrong credentials) gets a fresh process.
 * Makes one call through `etcd:///<service>` and one through
 * `etcd://<host>/<service>`, and prints one JSON line with the outcomes.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { register } from '../../src/register';
import { loadEcho, unary } from '../support/echo-proto';
import { runChildMain } from '../support/ts-child';

async function call(target: string): Promise<{ server?: string; code?: number; details?: string }> {
  const { Client } = loadEcho();
  const client = new Client(target, grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ etcd_weighted_round_robin: {} }] }),
  });
  try {
    return { server: (await unary(client, 'secure', { deadline: Date.now() + 8000 })).server };
  } catch (err) {
    return { code: (err as grpc.ServiceError).code, details: (err as grpc.ServiceError).details };
  } finally {
    client.close();
  }
}

async function main(): Promise<unknown> {
  const env = (name: string): string => {
    const value = process.env[name];
    if (value === undefined) throw new Error(`secure-client-child: ${name} is not set`);
    return value;
  };
  const host = env('TEST_ETCD_HOST');
  const service = env('TEST_SERVICE');
  register({
    etcd: {
      hosts: [`https://${host}`],
      credentials: { rootCertificate: readFileSync(env('TEST_CA_FILE')) },
      auth: { username: env('TEST_USER'), password: env('TEST_PASSWORD') },
    },
  });
  return {
    viaDefault: await call(`etcd:///${service}`),
    viaHosts: await call(`etcd://${host}/${service}`),
  };
}

runChildMain(main);
