/**
 * Test helpers for hedging: echo replicas that record which call (by an `x-test-call-id`
 * header the test sets) reached which replica, and calls that carry such an id.
 */
import * as grpc from '@grpc/grpc-js';
import { register } from '../../src/register';
import { type EchoClient, type EchoReply } from '../support/echo-proto';
import { type EchoServer, type EchoServerOptions } from '../support/echo-server';
import { waitFor } from '../support/wait';
import { STANDARD_KEYS, startServers } from './replicas';

export const CALL_ID_KEY = 'x-test-call-id';

export interface Arrival {
  readonly id: string;
  /** Replica name (r0, r1, …). */
  readonly server: string;
  /** `grpc-previous-rpc-attempts` as received, 0 when absent. */
  readonly previous: number;
}

export interface RecordingReplicas {
  readonly servers: EchoServer[];
  readonly target: string;
  /** Every call that reached a handler, in arrival order. */
  readonly arrivals: Arrival[];
  /** Header keys beyond the standard ones, the call id and grpc-previous-rpc-attempts. */
  readonly foreignKeys: Set<string>;
  /** Replica names each call id reached, in arrival order. */
  byCall(): Map<string, string[]>;
  totalCalls(): number;
  inFlight(): number;
  stop(): Promise<void>;
}

export async function startRecordingReplicas(count: number, options: (index: number) => EchoServerOptions = () => ({})): Promise<RecordingReplicas> {
  const arrivals: Arrival[] = [];
  const foreignKeys = new Set<string>();
  const servers = await startServers(count, name => (_method, metadata) => {
    const id = metadata.get(CALL_ID_KEY)[0];
    const previous = Number(metadata.get('grpc-previous-rpc-attempts')[0] ?? 0);
    if (id !== undefined) arrivals.push({ id: String(id), server: name, previous });
    for (const key of Object.keys(metadata.getMap())) {
      if (!STANDARD_KEYS.has(key) && key !== CALL_ID_KEY && key !== 'grpc-previous-rpc-attempts') foreignKeys.add(key);
    }
  }, options);
  return {
    servers,
    target: `ipv4:${servers.map(s => s.address).join(',')}`,
    arrivals,
    foreignKeys,
    byCall() {
      const map = new Map<string, string[]>();
      for (const a of arrivals) {
        let list = map.get(a.id);
        if (!list) map.set(a.id, (list = []));
        list.push(a.server);
      }
      return map;
    },
    totalCalls: () => servers.reduce((sum, s) => sum + s.calls, 0),
    inFlight: () => servers.reduce((sum, s) => sum + s.inFlight, 0),
    stop: async () => { await Promise.all(servers.map(s => s.stop(200))); },
  };
}

/** One unary call carrying `id` in its metadata; resolves to the reply or the error. */
export function callWithId(client: EchoClient, id: string, options: Partial<grpc.CallOptions> = {}): Promise<EchoReply> {
  const metadata = new grpc.Metadata();
  metadata.set(CALL_ID_KEY, id);
  return new Promise((resolve, reject) => {
    client.unary({ message: id }, metadata, { deadline: Date.now() + 10_000, ...options }, (err, reply) => (err ? reject(err) : resolve(reply as EchoReply)));
  });
}

/** Resets the counters and the record (after a warm-up). */
export function resetRecord(replicas: RecordingReplicas): void {
  for (const s of replicas.servers) Object.assign(s, { calls: 0, ok: 0, failed: 0 });
  replicas.arrivals.length = 0;
  replicas.foreignKeys.clear();
}

/** Calls until every replica served one (every subchannel READY), then clears the record. */
export async function warmUpRecording(c: EchoClient, replicas: RecordingReplicas): Promise<void> {
  const served = new Set<string>();
  let n = 0;
  await waitFor('every replica to serve a call', async () => {
    const reply = await callWithId(c, `warm-${n++}`).catch(() => undefined);
    if (reply) served.add(reply.server);
    return served.size === replicas.servers.length;
  }, { timeoutMs: 20_000 });
  await waitFor('warm-up attempts to end', () => replicas.inFlight() === 0);
  resetRecord(replicas);
}

/** The state of a suite on recording replicas; its clients are closed and replicas stopped after each test. */
export interface RecordingSuite {
  replicas: RecordingReplicas | undefined;
  readonly clients: EchoClient[];
}

/** Registers the suite's hooks (call inside `describe`): our policies registered, cleanup after each test. */
export function recordingSuite(): RecordingSuite {
  const suite: RecordingSuite = { replicas: undefined, clients: [] };
  before(() => register());
  afterEach(async () => {
    for (const c of suite.clients.splice(0)) c.close();
    await suite.replicas?.stop();
    suite.replicas = undefined;
  });
  return suite;
}
