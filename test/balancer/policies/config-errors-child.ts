/**
 * Child process for policy-config.test.ts: channels with bad and misspelt
 * etcd_* configs, at grpc-js's default verbosity, so the parent sees exactly
 * what a user's stderr shows. Each config is used by two channels and two
 * resolutions, so "once per distinct message" is put to the test.
 */
import * as grpc from '@grpc/grpc-js';
import { register } from '../../../src/register';

const CONFIGS = [
  { etcd_least_request: { choiceCount: 'two' } },
  { etcd_least_request: { choiceCnt: 3 } },
  { etcd_weighted_round_robin: { healthCheck: { serviceNmae: 'echo' } } },
  // Nested as the child of grpc-js's own outlier_detection.
  { outlier_detection: { child_policy: [{ etcd_peak_ewma: { decayMs: '10s' } }] } },
  // slowStart is common to every etcd_* policy.
  { etcd_weighted_random: { slowStart: { windowMs: -5 } } },
  { etcd_least_request: { slowStart: { windowMs: 1000, agression: 2 } } },
];

/** Resolves when the channel has left IDLE: its resolver result (and so the config) was processed. */
function leaveIdle(client: grpc.Client): Promise<void> {
  const channel = client.getChannel();
  const state = channel.getConnectivityState(true);
  if (state !== grpc.connectivityState.IDLE) return Promise.resolve();
  return new Promise((resolve, reject) => {
    channel.watchConnectivityState(state, Date.now() + 10_000, err => (err ? reject(err) : resolve()));
  });
}

async function main(): Promise<void> {
  register();
  for (const config of CONFIGS) {
    for (let channel = 0; channel < 2; channel++) {
      // Port 1 on loopback: nothing listens, the channel only resolves and fails to connect.
      const client = new grpc.Client('ipv4:127.0.0.1:1', grpc.credentials.createInsecure(), {
        'grpc.service_config': JSON.stringify({ loadBalancingConfig: [config] }),
      });
      await leaveIdle(client);
      client.close();
    }
  }
  process.stdout.write('done\n');
}

main().catch(err => {
  process.stderr.write(`child failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
