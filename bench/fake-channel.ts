/**
 * A load-balancing policy driven in-process, with no sockets: any registered
 * policy (grpc-js's or ours) is created through grpc-js's own child handler from
 * its service-config entry, given endpoints, and handed fake subchannels whose
 * connectivity the bench controls. Nothing is ever dialled.
 *
 * - `drivePolicy` (the `pick` scenario): subchannels READY from the start, so a
 *   policy builds its picker once, whatever a connectivity change costs it (the
 *   `scale` scenario measures that: O(N) per change made 10,000 endpoints take
 *   minutes to come up one by one).
 * - `PolicyHarness` (the `scale` scenario): subchannels that start IDLE, go
 *   CONNECTING when asked to connect (next tick, as grpc-js's do), and change
 *   state when the bench says so, notifying their listeners the way a real
 *   subchannel does; `FakeService` gives it endpoints the way our resolver
 *   does (etcd values through the resolver's `EndpointTable`).
 */
import * as grpc from '@grpc/grpc-js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ENDPOINT_ATTRIBUTES_KEY, type EndpointAttributes } from '../src/discovery/endpoint-attributes';
import { type ClientRegistrySource, type ClientRegistrySubscription, type ClientRegistryView } from '../src/discovery/client-registry-source';
import { decodeEndpoint, encodeEndpointValue, endpointKey } from '../src/backends/etcd/endpoint-codec';
import { EndpointTable, type DiscoveryKeyValue, type ResolvedEndpoints } from '../src/discovery/endpoint-table';
import {
  ChildLoadBalancerHandler, parseLoadBalancingConfig, PickResultType, statusOrFromValue,
  type ChannelControlHelper, type ConnectivityStateListener, type Endpoint, type PickArgs, type Picker, type SubchannelAddress,
  type SubchannelInterface, type TypedLoadBalancingConfig,
} from '../src/common/grpc-experimental';

const ConnectivityState = grpc.connectivityState;
/** What a subchannel without `grpc.keepalive_time_ms` reports to its listeners. */
const NO_KEEPALIVE_TIME = -1;

let nextChannelzId = 1;

/**
 * Just enough of a subchannel for pick_first leaves (grpc-js's `SubchannelInterface`):
 * a connectivity state, listeners called synchronously on each change with grpc-js's
 * signature, always healthy (no outlier detection), never connects.
 */
export class FakeSubchannel {
  private readonly channelzRef = { kind: 'subchannel', id: nextChannelzId++, name: '' };
  private readonly listeners = new Set<ConnectivityStateListener>();

  constructor(private readonly address: string, private state: grpc.connectivityState) {
    this.channelzRef.name = address;
  }

  /** Moves to `newState` and tells every listener, as grpc-js's `Subchannel.transitionToState` does. */
  setState(newState: grpc.connectivityState, errorMessage?: string): void {
    const previous = this.state;
    if (previous === newState) return;
    this.state = newState;
    // The live set, as grpc-js iterates it: a listener re-added during the loop is called again.
    for (const listener of this.listeners) {
      listener(this as unknown as SubchannelInterface, previous, newState, NO_KEEPALIVE_TIME, errorMessage);
    }
  }

  getConnectivityState(): grpc.connectivityState { return this.state; }
  /** Listeners attached: a policy's leaf holds one while it uses the subchannel (a "connection" in fleet counts). */
  get listenerCount(): number { return this.listeners.size; }
  addConnectivityStateListener(listener: ConnectivityStateListener): void { this.listeners.add(listener); }
  removeConnectivityStateListener(listener: ConnectivityStateListener): void { this.listeners.delete(listener); }
  /** IDLE → CONNECTING on the next tick (grpc-js defers it the same way); the bench decides what follows. */
  startConnecting(): void {
    if (this.state !== ConnectivityState.IDLE) return;
    process.nextTick(() => {
      if (this.state === ConnectivityState.IDLE) this.setState(ConnectivityState.CONNECTING);
    });
  }
  getAddress(): string { return this.address; }
  throttleKeepalive(): void {}
  ref(): void {}
  unref(): void {}
  getChannelzRef(): unknown { return this.channelzRef; }
  isHealthy(): boolean { return true; }
  addHealthStateWatcher(): void {}
  removeHealthStateWatcher(): void {}
  addDataWatcher(): void {}
  getRealSubchannel(): unknown { return this; }
  realSubchannelEquals(other: SubchannelInterface): boolean { return other.getRealSubchannel() === (this as unknown); }
  getCallCredentials(): grpc.CallCredentials { return grpc.CallCredentials.createEmpty(); }
  getChannel(): grpc.Channel { throw new Error('bench fake subchannel: no channel'); }
}

/**
 * One fake subchannel per address, shared by every `createSubchannel` for it, as
 * grpc-js's subchannel pool shares a real one (without the per-channel wrapper).
 */
export class FakeSubchannelPool {
  private readonly byAddress = new Map<string, FakeSubchannel>();

  constructor(private readonly initialState: grpc.connectivityState) {}

  get size(): number { return this.byAddress.size; }

  /** The subchannel of `address` (`host:port`), created in the initial state if new. */
  obtain(address: string): FakeSubchannel {
    let subchannel = this.byAddress.get(address);
    if (subchannel === undefined) {
      subchannel = new FakeSubchannel(address, this.initialState);
      this.byAddress.set(address, subchannel);
    }
    return subchannel;
  }

  /** Addresses whose subchannel a policy is using now (a leaf listens to it). */
  inUse(): string[] {
    return [...this.byAddress.values()].filter(s => s.listenerCount > 0).map(s => s.getAddress());
  }

  /** The subchannel of `address` if a policy created it. */
  find(address: string): FakeSubchannel | undefined {
    return this.byAddress.get(address);
  }
}

function addressKey(address: SubchannelAddress): string {
  return 'host' in address ? `${address.host}:${address.port}` : address.path;
}

/** A macrotask boundary: everything the current one queued (ticks, microtasks, earlier immediates) runs first. */
export function nextMacrotask(): Promise<void> {
  return new Promise(resolve => setImmediate(resolve));
}

/** What one pick met: a READY pick hands out a subchannel; QUEUE/DROP/TRANSIENT_FAILURE do not. */
export type PickOutcome = 'complete' | 'other';

/**
 * A policy created through `ChildLoadBalancerHandler` from `{ [policy]: {} }`,
 * whose channel side records every state/picker it publishes.
 */
export class PolicyHarness {
  readonly pool: FakeSubchannelPool;
  /** The latest published picker (undefined until the first publication). */
  picker: Picker | undefined;
  state: grpc.connectivityState | undefined;
  /** Number of `updateState` calls so far: a change means a new picker was published. */
  publications = 0;
  private readonly handler: InstanceType<typeof ChildLoadBalancerHandler>;
  private readonly config: TypedLoadBalancingConfig;
  private readonly pickArgs: PickArgs = { metadata: new grpc.Metadata(), extraPickInfo: {} };

  /** @param configBody the policy's service-config body (`{}` = its defaults). */
  constructor(readonly policy: string, initialState: grpc.connectivityState, configBody: object = {}) {
    const pool = new FakeSubchannelPool(initialState);
    this.pool = pool;
    const helper: ChannelControlHelper = {
      createSubchannel: (address: SubchannelAddress) => pool.obtain(addressKey(address)) as unknown as SubchannelInterface,
      updateState: (connectivity, published) => {
        this.state = connectivity;
        this.picker = published;
        this.publications++;
      },
      requestReresolution: () => {},
      addChannelzChild: () => {},
      removeChannelzChild: () => {},
    };
    this.handler = new ChildLoadBalancerHandler(helper);
    const config = parseLoadBalancingConfig({ [policy]: configBody });
    if (config === null) throw new Error(`bench: no LB policy '${policy}' registered with grpc-js`);
    this.config = config;
  }

  /** A resolver update as grpc-js delivers it: a copy of the list, the attributes merged into the options. */
  update(endpoints: readonly Endpoint[], options: grpc.ChannelOptions, note = 'bench'): boolean {
    return this.handler.updateAddressList(statusOrFromValue(endpoints.slice()), this.config, options, note);
  }

  /**
   * Waits one macrotask; then, while nothing new was published since `since` and
   * `expect` says something will be, up to 3 more macrotasks (a policy may batch its
   * publication with setImmediate) and 5 short timers (or with a 0 ms timeout).
   * Returns whether a new picker came.
   */
  async published(since: number, expect = true): Promise<boolean> {
    await nextMacrotask();
    if (!expect) return this.publications !== since;
    for (let turn = 0; turn < 3 && this.publications === since; turn++) await nextMacrotask();
    for (let timer = 0; timer < 5 && this.publications === since; timer++) await new Promise(resolve => setTimeout(resolve, 1));
    return this.publications !== since;
  }

  /**
   * What a call pays for `event`: process CPU (user + system, µs) from the event,
   * in a fresh macrotask, through the policy's publication (`published`) and one
   * pick on the latest picker. `expectPublication` false: no new picker is expected.
   */
  async cpuOfEvent(event: () => void, expectPublication = true): Promise<{ cpuUs: number; published: boolean; picked: boolean }> {
    await nextMacrotask();
    const since = this.publications;
    const start = process.cpuUsage();
    event();
    const published = await this.published(since, expectPublication);
    const picked = this.pickOnce() === 'complete';
    const used = process.cpuUsage(start);
    return { cpuUs: used.user + used.system, published, picked };
  }

  /** One pick on the latest picker, with the call hooks it returns run at once (what a call pays the picker). */
  pickOnce(): PickOutcome {
    const picker = this.picker;
    if (picker === undefined) return 'other';
    const result = picker.pick(this.pickArgs);
    if (result.pickResultType !== PickResultType.COMPLETE) return 'other';
    result.onCallStarted?.();
    result.onCallEnded?.(grpc.status.OK, '', this.pickArgs.metadata);
    return 'complete';
  }

  destroy(): void {
    this.handler.destroy();
  }
}

export interface DrivenPolicy {
  /** The READY picker the policy published. */
  readonly picker: Picker;
  /** Milliseconds the policy took to take the endpoint list and publish its picker. */
  readonly setupMs: number;
  destroy(): void;
}

/** `127.0.0.1:<10000 + i>`: loopback addresses that are never dialled. */
export function fakeEndpoints(count: number): Endpoint[] {
  return Array.from({ length: count }, (_, i) => ({ addresses: [{ host: '127.0.0.1', port: 10_000 + i }] }));
}

/** Creates `policy` (a registered name) over `count` READY endpoints; throws if it publishes no READY picker at once. */
export function drivePolicy(policy: string, count: number): DrivenPolicy {
  const harness = new PolicyHarness(policy, ConnectivityState.READY);
  const start = performance.now();
  harness.update(fakeEndpoints(count), {});
  return drivenOrThrow(harness, count, performance.now() - start);
}

/** `drivePolicy` for a policy that may publish after a few macrotasks (not counted in `setupMs`). */
export async function drivePolicyAsync(policy: string, count: number): Promise<DrivenPolicy> {
  const harness = new PolicyHarness(policy, ConnectivityState.READY);
  const start = performance.now();
  harness.update(fakeEndpoints(count), {});
  const setupMs = performance.now() - start;
  for (let turn = 0; turn < 4 && harness.state !== ConnectivityState.READY; turn++) await nextMacrotask();
  return drivenOrThrow(harness, count, setupMs);
}

function drivenOrThrow(harness: PolicyHarness, count: number, setupMs: number): DrivenPolicy {
  const { picker, state } = harness;
  if (picker === undefined || state !== ConnectivityState.READY) {
    harness.destroy();
    throw new Error(`bench: ${harness.policy} did not publish a READY picker over ${count} READY endpoints (state ${state === undefined ? 'none' : ConnectivityState[state]})`);
  }
  return { picker, setupMs, destroy: () => harness.destroy() };
}

const FAKE_SERVICE = 'bench-scale';
const PORTS_PER_HOST = 50_000;

/** Endpoint `i`'s address: `127.0.0.<1 + ⌊i / 50,000⌋>:<10000 + i mod 50,000>` (loopback, never dialled). */
export function fakeAddress(i: number): string {
  return `127.0.0.${1 + Math.floor(i / PORTS_PER_HOST)}:${10_000 + (i % PORTS_PER_HOST)}`;
}

/**
 * A service of `size` endpoints as our resolver sees it: one etcd key per
 * endpoint with the value our registry writes, kept in the resolver's own
 * `EndpointTable`, so an update costs what the resolver side costs too.
 * Every weight starts at 1 (priority 0).
 */
export class FakeService {
  private readonly table = new EndpointTable(FAKE_SERVICE, text => {
    throw new Error(`bench: the endpoint table rejected a fake value: ${text}`);
  }, undefined, decodeEndpoint);
  private readonly weights: Uint8Array;
  private revision = 1;

  constructor(readonly size: number) {
    this.weights = new Uint8Array(size).fill(1);
    this.table.replaceAll(Array.from({ length: size }, (_, i) => this.keyValue(i)));
  }

  address(i: number): string {
    return fakeAddress(i);
  }

  /** Toggles the weight of each endpoint in `indices` (1 ↔ 2): one etcd put event each. */
  changeWeights(indices: readonly number[]): void {
    for (const i of indices) {
      this.weights[i] = this.weights[i] === 1 ? 2 : 1;
      this.table.put(this.keyValue(i));
    }
  }

  /** The list and attributes, as the resolver builds them for each update. */
  resolve(): ResolvedEndpoints {
    return this.table.resolve();
  }

  /**
   * The same list as a generic resolver delivers it (dns, a third-party or a
   * polling backend): every `Endpoint`, address and attribute object new, in a new Map.
   */
  resolveGeneric(): ResolvedEndpoints {
    const { endpoints, attributes } = this.table.resolve();
    const copied = new Map<string, EndpointAttributes>();
    for (const [address, a] of attributes) copied.set(address, { weight: a.weight, priority: a.priority, metadata: { ...a.metadata } });
    return { endpoints: endpoints.map(e => ({ addresses: e.addresses.map(address => ({ ...address })) })), attributes: copied };
  }

  /** The options the LB policy gets: the resolver's attributes merged in (here there is nothing else). */
  options(resolved: ResolvedEndpoints): grpc.ChannelOptions {
    return { [ENDPOINT_ATTRIBUTES_KEY]: resolved.attributes };
  }

  private keyValue(i: number): DiscoveryKeyValue {
    const address = fakeAddress(i);
    return {
      key: endpointKey(FAKE_SERVICE, address),
      value: Buffer.from(encodeEndpointValue({ address, weight: this.weights[i] })),
      modRevision: String(this.revision++),
    };
  }
}

export type GcFunction = () => void;

/** `global.gc` without `--expose-gc` on the command line (the V8 flag set at run time); undefined if V8 refuses. */
export function exposedGc(): GcFunction | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? gc as GcFunction : undefined;
  } catch {
    return undefined;
  }
}

/** `heapUsed` after two full collections. */
export function heapUsedAfterGc(gc: GcFunction): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Heap bytes of one fake subchannel (measured over `size` of them in a pool, nothing attached). */
export function fakeSubchannelBytes(gc: GcFunction, size: number): number {
  const before = heapUsedAfterGc(gc);
  const pool = new FakeSubchannelPool(ConnectivityState.IDLE);
  for (let i = 0; i < size; i++) pool.obtain(fakeAddress(i));
  const after = heapUsedAfterGc(gc);
  // Read after the measurement: keeps the pool alive through it.
  return pool.size === size ? (after - before) / size : Number.NaN;
}

/** A fleet view set by the bench or a test, standing for the client registry (onChange runs inside `set`, never inside `subscribe`). */
export class FakeClientRegistrySource implements ClientRegistrySource {
  private listener: ((view: ClientRegistryView) => void) | undefined;

  constructor(private current: ClientRegistryView) {}

  /** A view of `clientCount` clients without zones, this one at `selfIndex`. */
  static view(selfIndex: number | undefined, clientCount: number): ClientRegistryView {
    return { selfIndex, clientCount, zoneCounts: new Map([['', clientCount]]) };
  }

  subscribe(onChange: (view: ClientRegistryView) => void): ClientRegistrySubscription {
    this.listener = onChange;
    const current = (): ClientRegistryView => this.current;
    return { get view() { return current(); }, release: () => { this.listener = undefined; } };
  }

  set(view: ClientRegistryView): void {
    this.current = view;
    this.listener?.(view);
  }
}
