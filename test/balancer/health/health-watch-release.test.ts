/**
 * A health watch must release what it holds when its replica leaves: the
 * subchannel's own channel that the Watch stream runs on is registered in
 * grpc-js's process-wide channelz registry until it is closed, and that entry
 * keeps the subchannel alive. Replicas replaced one by one over a real etcd,
 * counted through the channelz service itself.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { getDefaultEtcdOptions, setDefaultEtcdOptions } from '../../../src/backends/etcd/connection';
import { type Registration } from '../../../src/discovery/registration';
import { register, registerEndpoint } from '../../../src/register';
import { type EchoClient } from '../../support/echo-proto';
import { startEtcd, type EtcdServer } from '../../support/etcd';
import { waitFor } from '../../support/wait';
import { balancerFor, makeClient, runCalls } from '../support/load';
import { startHealthEchoServer, type HealthEchoServer } from '../support/health-service';

const SERVICE = 'test/health-release';
const ROUNDS = 60;
const LIVE = 3;
const WARM_ROUNDS = 10;

interface Replica {
  server: HealthEchoServer;
  registration: Registration;
}

interface ChannelMessage {
  data?: { target?: string };
  subchannel_ref?: { subchannel_id: string }[];
}

/** The channelz service on a local server: what grpc-js's registry holds, asked the supported way. */
class ChannelzProbe {
  private readonly server = new grpc.Server();
  private client: grpc.Client | undefined;

  async start(): Promise<void> {
    this.server.addService(grpc.getChannelzServiceDefinition(), grpc.getChannelzHandlers());
    const port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
    });
    this.client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  }

  /** Every top channel in the registry (paged). */
  async topChannels(): Promise<ChannelMessage[]> {
    const method = grpc.getChannelzServiceDefinition().GetTopChannels;
    const all: ChannelMessage[] = [];
    let start = 0;
    for (;;) {
      const page = await new Promise<{ channel: ChannelMessage[]; end: boolean }>((resolve, reject) => {
        this.client!.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize as (b: Buffer) => { channel: ChannelMessage[]; end: boolean },
          { start_channel_id: String(start), max_results: '100' }, (err, value) => (err || !value ? reject(err) : resolve(value)));
      });
      all.push(...page.channel);
      if (page.end || page.channel.length === 0) return all;
      start = Number((page.channel.at(-1) as { ref: { channel_id: string } }).ref.channel_id) + 1;
    }
  }

  close(): void {
    this.client?.close();
    this.server.forceShutdown();
  }
}

/** heapUsed after two full collections, when the process has `gc` (mocha `-n expose-gc`); the soak figure in docs/benchmarks.md. */
function heapAfterGc(): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return undefined;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(2);
}

describe('client-side health checking: a replaced replica leaves nothing behind', function () {
  this.timeout(120_000);
  let etcd: EtcdServer;
  let savedDefault: ReturnType<typeof getDefaultEtcdOptions>;
  const probe = new ChannelzProbe();
  let live: Replica[] = [];
  let client: EchoClient | undefined;

  before(async () => {
    [etcd] = await Promise.all([startEtcd(), probe.start()]);
    savedDefault = getDefaultEtcdOptions();
    setDefaultEtcdOptions({ hosts: etcd.endpoints });
    register();
  });

  after(async () => {
    client?.close();
    probe.close();
    await Promise.all(live.map(async r => {
      await r.registration.close();
      await r.server.echo.stop(100);
    }));
    setDefaultEtcdOptions(savedDefault);
    await etcd.destroy();
  });

  async function startReplica(name: string): Promise<Replica> {
    const server = await startHealthEchoServer({ name });
    const registration = await registerEndpoint({ service: SERVICE, address: server.address, ttlSeconds: 5, etcd: { hosts: etcd.endpoints } });
    return { server, registration };
  }

  async function stopReplica(replica: Replica): Promise<void> {
    await replica.registration.close();
    await replica.server.echo.stop(100);
  }

  /** Waits until the balancer serves exactly the live replicas, all READY (healthy). */
  function settled(): Promise<number> {
    const addresses = live.map(r => r.server.address);
    return waitFor('the live replicas READY and healthy, the departed ones gone', async () => {
      await runCalls(client!, 1, 1);
      return balancerFor(addresses)?.endpoints.every(e => e.state === 'READY') ?? false;
    }, { timeoutMs: 20_000 });
  }

  /** Top channels that are a subchannel's own channel (target `… (host:port)`), and the subchannels they reference. */
  async function subchannelChannels(): Promise<{ channels: number; subchannels: number; departed: number }> {
    const liveAddresses = new Set(live.map(r => r.server.address));
    const own = (await probe.topChannels()).filter(c => /\(.+\)$/.test(c.data?.target ?? ''));
    const subchannels = new Set(own.flatMap(c => (c.subchannel_ref ?? []).map(ref => ref.subchannel_id)));
    const departed = own.filter(c => !liveAddresses.has(/\((.+)\)$/.exec(c.data!.target!)![1])).length;
    return { channels: own.length, subchannels: subchannels.size, departed };
  }

  it(`${ROUNDS} rounds of one replica in, one out, with healthCheck on: channelz holds only the live replicas' channels`, async () => {
    live = await Promise.all(Array.from({ length: LIVE }, (_, i) => startReplica(`r${i}`)));
    // A private subchannel pool: a dropped subchannel is released at once (the global pool sweeps every 10 s).
    client = makeClient(`etcd:///${SERVICE}`, { etcd_weighted_round_robin: { healthCheck: { serviceName: '' } } }, { 'grpc.use_local_subchannel_pool': 1 });
    await settled();
    const start = await subchannelChannels();
    let heapStart: number | undefined;
    expect(start.channels, 'one health channel per live replica at the start').to.equal(LIVE);

    const counts: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      live.push(await startReplica(`r${LIVE + round}`));
      const leaving = live.shift()!;
      await stopReplica(leaving);
      await settled();
      // The watch closes when its subchannel is released, right after the balancer drops the endpoint.
      await new Promise(resolve => setImmediate(resolve));
      counts.push((await subchannelChannels()).channels);
      // Measured from a tenth of the way in: the first rounds warm up (JIT, the etcd client, servers' pools).
      if (round === WARM_ROUNDS - 1) heapStart = heapAfterGc();
    }
    const end = await subchannelChannels();
    const heapEnd = heapAfterGc();
    const heap = heapStart === undefined || heapEnd === undefined ? 'heap not measured (run with --expose-gc)'
      : `heap after GC ${mb(heapStart)} → ${mb(heapEnd)} MB (${((heapEnd - heapStart) / (ROUNDS - WARM_ROUNDS) / 1024).toFixed(1)} KB per replaced replica)`;
    console.log(`      ${ROUNDS} replicas replaced: subchannel channels in channelz ${start.channels} → ${end.channels} `
      + `(max ${Math.max(...counts)}), departed replicas still registered: ${end.departed}; ${heap}`);
    expect(end.departed, 'channels of departed replicas still in the channelz registry').to.equal(0);
    expect(end.channels).to.equal(LIVE);
    expect(end.subchannels, 'subchannels referenced from channelz').to.equal(LIVE);
    expect(Math.max(...counts), 'never more than the live replicas and one in flight').to.be.at.most(LIVE + 1);
  });
});
