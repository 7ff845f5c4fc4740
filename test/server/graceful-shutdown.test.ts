import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HealthImplementation, protoPath as HEALTH_PROTO_PATH } from 'grpc-health-check';
import { registerEndpoint } from '../../src/register';
import { type Registration } from '../../src/discovery/registration';
import { type ServingStatus } from '../../src/discovery/registration-options';
import { gracefulShutdown, type ShutdownPhase, type ShutdownResult } from '../../src/server/graceful-shutdown';
import { shutdownOnSignals } from '../../src/server/shutdown-on-signals';
import { startEchoServer, type EchoServer } from '../support/echo-server';
import { loadEcho, unary, type EchoClient } from '../support/echo-proto';
import { waitFor } from '../support/wait';
import { useObservedEtcd } from '../backends/etcd/registry-fixtures';

const SERVICE = 'test/graceful';
/**
 * No test here is about expiry (keys go by revoke in close()): a generous TTL, so keep-alives
 * starved on a busy machine cannot expire a key in the middle of a test.
 */
const TTL_SECONDS = 10;
/** Metadata key carrying each call's ID to the server. */
const CALL_ID = 'x-test-call-id';

interface HealthClient extends grpc.Client {
  check(req: { service: string }, options: Partial<grpc.CallOptions>, cb: grpc.requestCallback<{ status: string }>): grpc.ClientUnaryCall;
}

function healthClient(address: string): HealthClient {
  const def = protoLoader.loadSync(HEALTH_PROTO_PATH, { keepCase: true, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  return new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure()) as unknown as HealthClient;
}

/** grpc.health.v1 Check over the network, as a load balancer would ask. */
function check(client: HealthClient, service: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.check({ service }, { deadline: Date.now() + 2000 }, (err, res) => (err ? reject(err) : resolve(res!.status)));
  });
}

describe('registry: health and graceful shutdown', function () {
  this.timeout(30_000);

  const suite = useObservedEtcd();
  let echo: EchoServer | undefined;
  let client: EchoClient | undefined;
  let health: HealthClient | undefined;
  let registration: Registration | undefined;

  afterEach(async () => {
    client?.close();
    health?.close();
    await registration?.close();
    echo?.forceStop();
    client = health = registration = echo = undefined;
  });

  /**
   * An echo server with grpc.health.v1, registered in etcd; `log` records health changes in order,
   * `onCall` sees the metadata of each call that reaches the echo handler.
   */
  async function startRegisteredServer(log: string[] = [], latencyMs = 0, onCall?: (metadata: grpc.Metadata) => void): Promise<void> {
    const impl = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE]: 'NOT_SERVING' });
    echo = await startEchoServer({
      name: 'graceful', latencyMs, configure: server => impl.addToServer(server), onCall: (_method, metadata) => onCall?.(metadata),
    });
    const recording = {
      setStatus(service: string, status: ServingStatus): void {
        log.push(`health '${service}' ${status}`);
        impl.setStatus(service, status);
      },
    };
    registration = await registerEndpoint({
      service: SERVICE, address: echo.address, ttlSeconds: TTL_SECONDS, health: recording, etcd: { hosts: suite.etcd.endpoints },
    });
    const { Client } = loadEcho();
    client = new Client(echo.address, grpc.credentials.createInsecure());
    health = healthClient(echo.address);
  }

  it('health: SERVING after register, setServing flips it, both for the server and the service', async () => {
    await startRegisteredServer();
    expect(await check(health!, '')).to.equal('SERVING');
    expect(await check(health!, SERVICE)).to.equal('SERVING');
    registration!.setServing(false);
    expect(await check(health!, '')).to.equal('NOT_SERVING');
    expect(await check(health!, SERVICE)).to.equal('NOT_SERVING');
    // The etcd key is untouched by setServing.
    expect(await suite.observer.get(registration!.key)).to.not.equal(undefined);
    registration!.setServing(true);
    expect(await check(health!, '')).to.equal('SERVING');
  });

  it('setServing without health is a valid no-op', async () => {
    echo = await startEchoServer();
    registration = await registerEndpoint({ service: SERVICE, address: echo.address, ttlSeconds: TTL_SECONDS, etcd: { hosts: suite.etcd.endpoints } });
    registration.setServing(false);
    registration.setServing(true);
    expect(registration.state).to.equal('registered');
  });

  it('NOT_SERVING first, then deregister, grace, drain: no in-flight call fails', async () => {
    const log: string[] = [];
    // Which calls reached the handler: the server accepted those, and none of them may fail.
    const accepted = new Set<string>();
    await startRegisteredServer(log, 150, metadata => accepted.add(String(metadata.get(CALL_ID)[0])));
    const key = registration!.key;
    const phaseAt = new Map<ShutdownPhase, number>();
    let inFlightAtDrain = -1;
    let duringGrace: Promise<[string, boolean]> | undefined;

    // A stream of calls from a client connected directly to the server.
    const results: Array<{ id: string; startedAt: number; error?: grpc.ServiceError }> = [];
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        const r: { id: string; startedAt: number; error?: grpc.ServiceError } = { id: String(results.length), startedAt: Date.now() };
        results.push(r);
        const metadata = new grpc.Metadata();
        metadata.set(CALL_ID, r.id);
        await unary(client!, 'x', { deadline: Date.now() + 5000 }, metadata).catch((err: grpc.ServiceError) => { r.error = err; });
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await waitFor('calls in flight', () => echo!.inFlight >= 4, { timeoutMs: 5000 });
    // Calls in flight at tryShutdown by construction, not by the luck of the workers' timing: HELD
    // calls wait in the handler until the drain has begun, the other workers keep calling throughout.
    const HELD = 3;
    const hold = echo!.holdNext(HELD);
    await waitFor(`${HELD} calls held in the handler`, () => hold.held === HELD, { timeoutMs: 5000 });

    const result: ShutdownResult = await gracefulShutdown(echo!.server, registration!, {
      deregisterGraceMs: 400,
      drainMs: 5000,
      onPhase: phase => {
        phaseAt.set(phase, Date.now());
        log.push(`phase ${phase}`);
        if (phase === 'grace') {
          // While still serving: health already says NOT_SERVING and the key is gone.
          duringGrace = Promise.all([check(health!, ''), suite.observer.get(key).then(kv => kv === undefined)]);
        }
        if (phase === 'draining') {
          inFlightAtDrain = echo!.inFlight;
          // onPhase runs just before tryShutdown; setImmediate lets the held calls go on after it.
          setImmediate(() => hold.release());
        }
        if (phase === 'stopped') running = false;
      },
    });
    await Promise.all(workers);

    expect(log.indexOf("health '' NOT_SERVING")).to.be.greaterThan(-1);
    expect(log.indexOf("health '' NOT_SERVING")).to.be.lessThan(log.indexOf('phase deregistering'));
    expect(log.indexOf(`health '${SERVICE}' NOT_SERVING`)).to.be.lessThan(log.indexOf('phase deregistering'));
    expect(await duringGrace).to.deep.equal(['NOT_SERVING', true]);
    expect(result.forced).to.equal(false);
    expect(hold.taken).to.equal(HELD);
    expect(inFlightAtDrain).to.be.at.least(HELD);

    const drainAt = phaseAt.get('draining')!;
    const failed = results.filter(r => r.error);
    // A call the client started before tryShutdown can still be in transit (sent, not yet read by the
    // server) when the server stops taking streams: refused, never processed, UNAVAILABLE. On a busy
    // machine several are; the client's start time cannot tell them from accepted ones, the server can.
    const inTransit = failed.filter(r => r.startedAt < drainAt).length;
    console.log(`      shutdown took ${result.elapsedMs} ms; ${accepted.size} calls accepted (${inFlightAtDrain} in flight at tryShutdown, `
      + `${HELD} of them held), ${results.length - failed.length} answered; ${failed.length} refused (${inTransit} of them started before `
      + `tryShutdown), codes ${[...new Set(failed.map(r => r.error!.code))].join(',')}`);
    // Every call the server accepted (the held ones included) was answered.
    expect(results.filter(r => accepted.has(r.id) && r.error).map(r => `${r.id}: ${r.error!.code} ${r.error!.details}`)).to.deep.equal([]);
    // The others were refused at the door, never processed: safe for a client to retry elsewhere.
    expect(failed.filter(r => accepted.has(r.id) || r.error!.code !== grpc.status.UNAVAILABLE).map(r => r.id)).to.deep.equal([]);
    expect(await suite.observer.get(key)).to.equal(undefined);
  });

  it('forces the shutdown when drainMs runs out', async () => {
    await startRegisteredServer();
    echo!.setBehaviour({ hang: true });
    const hung = unary(client!, 'x', { deadline: Date.now() + 10_000 }).then(() => 'ok', (err: grpc.ServiceError) => err.code);
    await waitFor('a hung call', () => echo!.inFlight === 1, { timeoutMs: 5000 });
    const result = await gracefulShutdown(echo!.server, registration!, { deregisterGraceMs: 0, drainMs: 300 });
    expect(result.forced).to.equal(true);
    expect(await hung).to.not.equal('ok');
  });

  it('shutdownOnSignals runs the shutdown on a signal, then removes its listeners', async () => {
    await startRegisteredServer();
    const signal: NodeJS.Signals = 'SIGUSR2';
    const listenersBefore = process.listenerCount(signal);
    let done: ShutdownResult | Error | undefined;
    shutdownOnSignals(echo!.server, registration!, {
      signals: [signal], deregisterGraceMs: 0, drainMs: 2000, onShutdown: r => { done = r; },
    });
    expect(process.listenerCount(signal)).to.equal(listenersBefore + 1);
    process.kill(process.pid, signal);
    const ms = await waitFor('the shutdown to finish', () => done !== undefined, { timeoutMs: 10_000 });
    console.log(`      shutdown finished ${ms} ms after ${signal}`);
    expect(done).to.not.be.instanceOf(Error);
    expect(registration!.state).to.equal('closed');
    expect(await suite.observer.get(registration!.key)).to.equal(undefined);
    expect(process.listenerCount(signal)).to.equal(listenersBefore);
  });

  it('shutdownOnSignals returns a disposer that removes its listeners', async () => {
    await startRegisteredServer();
    const before = process.listenerCount('SIGTERM');
    const dispose = shutdownOnSignals(echo!.server, registration!);
    expect(process.listenerCount('SIGTERM')).to.equal(before + 1);
    expect(process.listenerCount('SIGINT')).to.be.greaterThan(0);
    dispose();
    expect(process.listenerCount('SIGTERM')).to.equal(before);
    expect(registration!.state).to.equal('registered');
  });
});
