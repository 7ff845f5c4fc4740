/**
 * A load-balancing policy driven in-process, with no sockets: any registered
 * policy (grpc-js's or ours) is created through grpc-js's own child handler from
 * its service-config entry, given N endpoints, and handed fake subchannels that
 * are READY from the start. The policy then publishes a READY picker, which the
 * `pick` scenario calls in a loop.
 *
 * Subchannels are READY at creation rather than flipped one by one: each flip
 * makes a policy rebuild its picker over all endpoints (O(N) each, O(N²) for the
 * set), minutes at 10,000 endpoints; created READY, both grpc-js's round_robin and
 * our pool build it once (they pause updates while adding endpoints).
 */
import * as grpc from '@grpc/grpc-js';
import {
  ChildLoadBalancerHandler, parseLoadBalancingConfig, statusOrFromValue,
  type ChannelControlHelper, type Endpoint, type Picker, type SubchannelAddress, type SubchannelInterface,
} from '../src/grpc-experimental';

let nextChannelzId = 1;

/** Just enough of a subchannel for pick_first leaves: READY, healthy, never connects. */
class FakeSubchannel {
  private readonly channelzRef = { kind: 'subchannel', id: nextChannelzId++, name: '' };
  constructor(private readonly address: string) {
    this.channelzRef.name = address;
  }
  getConnectivityState(): grpc.connectivityState { return grpc.connectivityState.READY; }
  addConnectivityStateListener(): void {}
  removeConnectivityStateListener(): void {}
  startConnecting(): void {}
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
  realSubchannelEquals(other: unknown): boolean { return other === this; }
  getCallCredentials(): grpc.CallCredentials { return grpc.CallCredentials.createEmpty(); }
  getChannel(): grpc.Channel { throw new Error('bench fake subchannel: no channel'); }
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

/** Creates `policy` (a registered name) over `count` READY endpoints; throws if it publishes no READY picker. */
export function drivePolicy(policy: string, count: number): DrivenPolicy {
  let picker: Picker | undefined;
  let state: grpc.connectivityState | undefined;
  const helper: ChannelControlHelper = {
    createSubchannel: (address: SubchannelAddress) => {
      const name = 'host' in address ? `${address.host}:${address.port}` : address.path;
      return new FakeSubchannel(name) as unknown as SubchannelInterface;
    },
    updateState: (connectivity, published) => {
      state = connectivity;
      picker = published;
    },
    requestReresolution: () => {},
    addChannelzChild: () => {},
    removeChannelzChild: () => {},
  };
  const handler = new ChildLoadBalancerHandler(helper);
  const endpoints = fakeEndpoints(count);
  const config = parseLoadBalancingConfig({ [policy]: {} });
  const start = performance.now();
  handler.updateAddressList(statusOrFromValue(endpoints), config, {}, 'bench');
  const setupMs = performance.now() - start;
  if (picker === undefined || state !== grpc.connectivityState.READY) {
    handler.destroy();
    throw new Error(`bench: ${policy} did not publish a READY picker over ${count} READY endpoints (state ${state === undefined ? 'none' : grpc.connectivityState[state]})`);
  }
  return { picker, setupMs, destroy: () => handler.destroy() };
}
