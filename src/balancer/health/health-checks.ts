/**
 * What the shared endpoint layer needs for client-side health checking, for
 * one balancer and one `healthCheck.serviceName`: it wraps each subchannel
 * the endpoints' children create (`HealthCheckedSubchannel`), unwraps them in
 * the children's picks, and tells the balancer what an endpoint is worth:
 *
 * | connection | health                  | endpoint state                          |
 * |------------|-------------------------|-----------------------------------------|
 * | not READY  | (not watched)           | the child's                             |
 * | READY      | pending (no answer yet) | CONNECTING: calls queue, nothing fails  |
 * | READY      | unhealthy               | TRANSIENT_FAILURE, error names the status |
 * | READY      | healthy                 | the child's: READY, or TRANSIENT_FAILURE while outlier_detection ejects it |
 *
 * Only READY endpoints are picked, so the pickers and the retry skip hook
 * both mean "READY and healthy" (except in panic: see panic-threshold.ts).
 */
import { connectivityState as ConnectivityState } from '@grpc/grpc-js';
import { PickResultType, type PickArgs, type Picker, type PickResult, type SubchannelInterface } from '../../common/grpc-experimental';
import { HealthCheckedSubchannel, unwrapHealthChecked } from './health-checked-subchannel';
import { type EndpointChild, type EndpointState } from '../pool/endpoint-state';

/** An endpoint's state as the balancer should see it. */
export interface EndpointHealthView {
  readonly connectivity: ConnectivityState;
  /** Whether the endpoint has a READY connection (healthy or not). */
  readonly connected: boolean;
  /** Why it is not usable, when health is the reason. */
  readonly error: string | undefined;
}

interface Entry {
  /** The child's latest report (pick-first's view: TRANSIENT_FAILURE for a picked but unhealthy subchannel). */
  reported: ConnectivityState;
  /** Live wrappers of the endpoint's subchannels (more than one only while pick-first tries addresses). */
  readonly subchannels: Set<HealthCheckedSubchannel>;
  /** The last definite verdict of its connection, for counting flips. */
  lastVerdict: 'healthy' | 'unhealthy' | undefined;
}

/** Client-side health checking of one balancer's endpoints, for one service name. */
export class EndpointHealthChecks {
  private readonly entries = new WeakMap<EndpointState, Entry>();

  /**
   * @param serviceName Sent in each `HealthCheckRequest`; '' = the whole server.
   * @param onChange Called when an endpoint's health changes (not during subchannel creation).
   */
  constructor(readonly serviceName: string, private readonly onChange: (endpoint: EndpointState) => void) {}

  /**
   * `child` whose picks hand out the subchannels our wrappers wrap. While
   * `endpoint` is unhealthy but has a verdict (the balancer picks it only in
   * panic), its picks hand out its READY subchannel, health ignored.
   */
  wrapChild(child: EndpointChild, endpoint: EndpointState): EndpointChild {
    let inner: Picker | undefined;
    let outer: Picker | undefined;
    const ignoringHealth: Picker = { pick: pickArgs => this.pickIgnoringHealth(endpoint, child, pickArgs) };
    return {
      startConnecting: () => child.startConnecting(),
      exitIdle: () => child.exitIdle(),
      destroy: () => child.destroy(),
      getPicker: () => {
        if (!endpoint.usable && endpoint.healthKnown) return ignoringHealth;
        const picker = child.getPicker();
        if (picker !== inner || outer === undefined) {
          inner = picker;
          outer = unwrapHealthChecked(picker);
        }
        return outer;
      },
    };
  }

  /** Wraps a subchannel created for `endpoint`. */
  wrapSubchannel(endpoint: EndpointState, subchannel: SubchannelInterface): SubchannelInterface {
    const entry = this.entry(endpoint);
    const wrapper = new HealthCheckedSubchannel(subchannel, this.serviceName, () => this.onChange(endpoint), released => entry.subchannels.delete(released));
    entry.subchannels.add(wrapper);
    return wrapper;
  }

  /** The child's latest report for `endpoint` (what holds while its connection is healthy). */
  setReported(endpoint: EndpointState, connectivity: ConnectivityState): void {
    this.entry(endpoint).reported = connectivity;
  }

  /** What `endpoint` is worth now, health included. */
  view(endpoint: EndpointState): EndpointHealthView {
    const entry = this.entry(endpoint);
    for (const subchannel of entry.subchannels) {
      if (!subchannel.isConnected()) continue;
      const status = subchannel.healthStatus();
      if (status.verdict === 'pending') return { connectivity: ConnectivityState.CONNECTING, connected: true, error: undefined };
      if (status.verdict === 'unhealthy') {
        return { connectivity: ConnectivityState.TRANSIENT_FAILURE, connected: true, error: `${subchannel.getAddress()}: health ${status.detail}` };
      }
      return { connectivity: entry.reported, connected: true, error: undefined };
    }
    return { connectivity: entry.reported, connected: false, error: undefined };
  }

  /** The health verdict of the endpoint's connected subchannel; undefined while none is connected. */
  verdict(endpoint: EndpointState): 'pending' | 'healthy' | 'unhealthy' | undefined {
    for (const subchannel of this.entry(endpoint).subchannels) {
      if (subchannel.isConnected()) return subchannel.healthStatus().verdict;
    }
    return undefined;
  }

  /**
   * The endpoint's new definite verdict when it flipped healthy ↔ unhealthy since
   * the last call (the first verdict counts only when unhealthy); undefined otherwise.
   */
  takeFlip(endpoint: EndpointState): 'healthy' | 'unhealthy' | undefined {
    const verdict = this.verdict(endpoint);
    if (verdict !== 'healthy' && verdict !== 'unhealthy') return undefined;
    const entry = this.entry(endpoint);
    const previous = entry.lastVerdict;
    entry.lastVerdict = verdict;
    return verdict !== previous && (previous !== undefined || verdict === 'unhealthy') ? verdict : undefined;
  }

  /** A pick of the endpoint's READY subchannel, whatever its health (panic); the child's own pick when it has none. */
  private pickIgnoringHealth(endpoint: EndpointState, child: EndpointChild, pickArgs: PickArgs): PickResult {
    for (const subchannel of this.entry(endpoint).subchannels) {
      if (!subchannel.isConnected()) continue;
      return { pickResultType: PickResultType.COMPLETE, subchannel: subchannel.getWrappedSubchannel(), status: null, onCallStarted: null, onCallEnded: null };
    }
    return unwrapHealthChecked(child.getPicker()).pick(pickArgs);
  }

  private entry(endpoint: EndpointState): Entry {
    let entry = this.entries.get(endpoint);
    if (entry === undefined) {
      entry = { reported: ConnectivityState.IDLE, subchannels: new Set(), lastVerdict: undefined };
      this.entries.set(endpoint, entry);
    }
    return entry;
  }
}
