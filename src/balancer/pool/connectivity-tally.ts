/**
 * A balancer's endpoints counted per connectivity state, and how many have a
 * READY connection, so no channel-state decision scans the endpoints. The only
 * writer of an endpoint's connectivity (`EndpointState.report`).
 */
import { connectivityState as ConnectivityState } from '@grpc/grpc-js';
import { type EndpointState } from './endpoint-state';

/** What a connectivity report changed about an endpoint's connection. */
export type ConnectionChange = 'gained' | 'lost' | 'none';

/** Counters over one balancer's endpoints. */
export class ConnectivityTally {
  private readonly inState = new Int32Array(ConnectivityState.SHUTDOWN + 1);
  private connectedCount = 0;

  /** Endpoints in `connectivity`. */
  count(connectivity: ConnectivityState): number {
    return this.inState[connectivity];
  }

  /** Endpoints with a READY connection (healthy or not). */
  get connected(): number {
    return this.connectedCount;
  }

  /** Counts a new endpoint. */
  add(endpoint: EndpointState): void {
    this.inState[endpoint.state]++;
  }

  /** Stops counting a dropped endpoint. */
  remove(endpoint: EndpointState): void {
    this.inState[endpoint.state]--;
    if (endpoint.connected) this.connectedCount--;
    endpoint.report(endpoint.state, false);
  }

  /** Records a report on `endpoint`, counted. */
  report(endpoint: EndpointState, connectivity: ConnectivityState, connected: boolean): ConnectionChange {
    this.inState[endpoint.state]--;
    this.inState[connectivity]++;
    const was = endpoint.connected;
    endpoint.report(connectivity, connected);
    if (connected === was) return 'none';
    this.connectedCount += connected ? 1 : -1;
    return connected ? 'gained' : 'lost';
  }
}
