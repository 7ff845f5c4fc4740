/**
 * A subchannel wrapper that is healthy only while its subchannel's health
 * watch (see `HealthWatch`) says so. It uses grpc-js's own wrapper health
 * mechanism (`BaseSubchannelWrapper.setHealthy`), so it composes both ways:
 * - below us, `outlier_detection`'s wrapper: an ejection reaches our listeners
 *   (the base class forwards the child's health), and `isHealthy()` is
 *   "our verdict and the child's";
 * - above us, pick-first (inside each endpoint's `LeafLoadBalancer`) reports
 *   TRANSIENT_FAILURE for a picked subchannel that is not healthy, and never
 *   hands it to a call.
 * As any wrapper must, ours is removed from pick results by the policy that
 * created it (`unwrapHealthChecked`), so a parent policy finds its own wrapper.
 */
import { connectivityState as ConnectivityState } from '@grpc/grpc-js';
import {
  BaseSubchannelWrapper, PickResultType, type PickArgs, type Picker, type PickResult, type RealSubchannel, type SubchannelInterface,
} from '../../common/grpc-experimental';
import { HealthWatch, healthWatchKey, type HealthStatus, type HealthStatusWatcher } from './health-watch';

const NO_WATCH: HealthStatus = Object.freeze({ verdict: 'pending', detail: 'not watched yet' });

export class HealthCheckedSubchannel extends BaseSubchannelWrapper {
  private watch: HealthWatch | undefined;
  private released = false;

  /**
   * @param child The subchannel from the parent's helper (a real one, or a parent policy's wrapper).
   * @param serviceName Sent in `HealthCheckRequest`; '' = the whole server.
   * @param onChange Called after each health change this wrapper hears (never during construction). Must not throw.
   * @param onReleased Called once, when the last reference goes (pick-first dropped it).
   */
  constructor(
    child: SubchannelInterface,
    serviceName: string,
    private readonly onChange: () => void,
    private readonly onReleased: (subchannel: HealthCheckedSubchannel) => void,
  ) {
    super(child);
    const watcher: HealthStatusWatcher = {
      setSubchannel: (real: RealSubchannel) => {
        this.watch = real.getOrCreateDataProducer(healthWatchKey(serviceName), s => new HealthWatch(s, serviceName)) as HealthWatch;
        this.watch.addDataWatcher(watcher);
      },
      destroy: () => this.watch?.removeDataWatcher(watcher),
      onHealthStatus: status => {
        this.setHealthy(status.verdict === 'healthy');
        this.onChange();
      },
    };
    this.addDataWatcher(watcher);
    // A shared watch may already know: a second channel on the same connection is usable at once.
    this.setHealthy(this.isConnected() && this.healthStatus().verdict === 'healthy');
  }

  /** The health verdict for this subchannel's connection; meaningful while `isConnected()`. */
  healthStatus(): HealthStatus {
    // Read from the watch, not remembered: a connection that just came up is pending even if the
    // subchannel told pick-first before it told the watch.
    return this.watch?.status ?? NO_WATCH;
  }

  isConnected(): boolean {
    return this.getConnectivityState() === ConnectivityState.READY;
  }

  getWrappedSubchannel(): SubchannelInterface {
    return this.child;
  }

  protected override destroy(): void {
    super.destroy();
    if (this.released) return;
    this.released = true;
    this.onReleased(this);
  }
}

/**
 * `picker`, with our wrapper replaced by what it wraps in complete picks. The
 * result object is changed in place: pick-first makes a fresh one per pick.
 */
export function unwrapHealthChecked(picker: Picker): Picker {
  return {
    pick(pickArgs: PickArgs): PickResult {
      const result = picker.pick(pickArgs);
      if (result.pickResultType === PickResultType.COMPLETE && result.subchannel instanceof HealthCheckedSubchannel) {
        result.subchannel = result.subchannel.getWrappedSubchannel();
      }
      return result;
    },
  };
}
