/**
 * Child process for register-unreachable.test.ts: `await registerEndpoint()` with
 * etcd unreachable and nothing else keeping Node alive. Prints one JSON line.
 */
import { registerEndpoint } from '../../../src/register';

const started = Date.now();

async function duplicate(): Promise<void> {
  // A rejected second registration of the same key must leave nothing holding the process open.
  const options = { service: 'dup', address: '127.0.0.1:50052', etcd: { hosts: [process.env.TEST_ETCD ?? ''] } };
  const first = await registerEndpoint(options);
  const second = await registerEndpoint(options).then(() => 'resolved', (err: Error) => err.message);
  await first.close();
  process.stdout.write(`${JSON.stringify({ outcome: 'duplicate', second })}\n`);
}

if (process.env.TEST_SCENARIO === 'duplicate') void duplicate();
else registerEndpoint({
  service: 'unreachable',
  address: '127.0.0.1:50051',
  registerTimeoutMs: Number(process.env.TEST_REGISTER_TIMEOUT_MS),
  etcd: { hosts: [process.env.TEST_ETCD ?? ''] },
}).then(
  () => process.stdout.write(`${JSON.stringify({ outcome: 'resolved', elapsedMs: Date.now() - started })}\n`),
  (err: Error) => process.stdout.write(`${JSON.stringify({ outcome: 'rejected', message: err.message, elapsedMs: Date.now() - started })}\n`),
);
