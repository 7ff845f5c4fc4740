/**
 * One Service port as the core sees it: the slices of the shared `SliceInformer`, merged
 * into one endpoint per address (an endpoint moving between slices is one endpoint; the
 * ready copy wins). Each slice change touches only that slice's addresses.
 */
import { DiscoveryWatch } from '../../discovery/discovery-watch';
import { type ResolvedResolverOptions } from '../../discovery/resolver-options';
import { describePorts, decodeSliceEndpoint, isReadyValue, sliceEndpoints } from './slice-codec';
import { type InformerFailure, type SliceSource } from './slice-informer';

export class SliceWatch extends DiscoveryWatch {
  /** Encoded endpoints of each slice, by address. */
  private readonly bySlice = new Map<string, ReadonlyMap<string, string>>();
  /** For each address, its encoded endpoint in each slice that has it (usually one). */
  private readonly byAddress = new Map<string, Map<string, string>>();
  private readonly fqdnSlices = new Set<string>();
  private unsubscribe: (() => void) | undefined;
  /** The WarnOnce key of the credential or RBAC error last reported, until a watch opens. */
  private reportedKey: string | undefined;

  constructor(
    service: string,
    private readonly informer: SliceSource,
    private readonly port: number | string,
    options: ResolvedResolverOptions,
    private readonly warn: (text: string, key?: string) => void,
    private readonly reportError: (text: string, key: string) => void,
    private readonly forgetError: (key: string) => void = () => {},
  ) {
    super(service, informer.label, options, text => warn(text), decodeSliceEndpoint, 'kubernetes_resolver');
  }

  start(): void {
    this.unsubscribe = this.informer.on({
      changed: names => this.applyChanges(names),
      failed: failure => this.onFailure(failure),
      watching: open => (open ? this.watchOpened() : this.metrics?.watchEnded()),
      relisted: () => this.metrics?.relisted(),
    });
    // The informer was started when first acquired; another port of the same Service may have listed already, or be failing.
    if (this.informer.listed) this.applyChanges([...this.informer.slices.keys()]);
    else if (this.informer.lastFailure) this.onFailure(this.informer.lastFailure);
  }

  protected stop(): void {
    this.unsubscribe?.();
  }

  private applyChanges(names: readonly string[]): void {
    if (this.closed) return;
    let changed = false;
    for (const name of names) changed = this.applySlice(name) || changed;
    this.revision = /^\d+$/.test(this.informer.resourceVersion) ? Number(this.informer.resourceVersion) : this.revision;
    this.metrics?.listed();
    if (this.table.keyCount === 0 && typeof this.port === 'string' && !this.hasList) {
      const missing = this.missingPortMessage();
      if (missing) {
        this.reportError(missing, `port:${this.informer.label}:${this.port}`);
        this.failedBeforeFirstList(missing);
        return;
      }
    }
    if (changed || !this.hasList) this.markChanged(this.hasList ? this.options.coalesceWindowMs : 0);
  }

  /** Applies one slice's new state; returns whether the table changed. */
  private applySlice(name: string): boolean {
    const slice = this.informer.slices.get(name);
    const result = slice === undefined ? undefined : sliceEndpoints(slice, this.port);
    if (result?.kind === 'fqdn' && !this.fqdnSlices.has(name)) {
      this.fqdnSlices.add(name);
      this.warn(`service ${this.informer.label}: skipping EndpointSlice '${name}' of addressType FQDN (only IPv4 and IPv6 addresses are dialled)`, `fqdn:${this.informer.label}`);
    }
    const next: ReadonlyMap<string, string> = result?.kind === 'endpoints' ? result.byAddress : new Map();
    const previous = this.bySlice.get(name);
    if (next.size === 0) this.bySlice.delete(name);
    else this.bySlice.set(name, next);
    let changed = false;
    if (previous) {
      for (const [address, value] of previous) {
        if (next.get(address) === value) continue;
        if (!next.has(address)) changed = this.setCopy(address, name, undefined) || changed;
      }
    }
    for (const [address, value] of next) {
      if (previous?.get(address) === value) continue;
      changed = this.setCopy(address, name, value) || changed;
    }
    return changed;
  }

  /** Sets (or removes) the copy of `address` in slice `name`, then puts the winning copy in the table. */
  private setCopy(address: string, name: string, value: string | undefined): boolean {
    let copies = this.byAddress.get(address);
    if (value === undefined) {
      copies?.delete(name);
      if (!copies || copies.size === 0) {
        this.byAddress.delete(address);
        return this.table.delete(address);
      }
    } else {
      if (!copies) this.byAddress.set(address, (copies = new Map()));
      copies.set(name, value);
    }
    const winner = copies.size === 1 ? copies.values().next().value as string : pickCopy(copies);
    return this.table.put({ key: address, value: winner, modRevision: winner });
  }

  /** When no slice has the port name but some have ports: a message naming the ports that exist. */
  private missingPortMessage(): string | undefined {
    const ports = new Set<string>();
    for (const slice of this.informer.slices.values()) for (const p of describePorts(slice)) ports.add(p);
    if (ports.size === 0) return undefined;
    return `kubernetes resolver: service ${this.informer.namespace}/${this.informer.service} has no port named '${String(this.port)}'; ` +
      `its EndpointSlices have ${[...ports].sort().join(', ')}`;
  }

  /** A watch is open, so listing worked: a credential or RBAC error, if reported, prints again when it comes back. */
  private watchOpened(): void {
    this.metrics?.watchConnected();
    if (this.reportedKey === undefined) return;
    this.forgetError(this.reportedKey);
    this.trace(`${this.informer.label}: reading EndpointSlices works again`);
    this.reportedKey = undefined;
  }

  private onFailure(failure: InformerFailure): void {
    if (this.closed) return;
    this.metrics?.failed('watch');
    const { namespace, service } = this.informer;
    let details: string;
    if (failure.kind === 'forbidden') {
      details = `kubernetes resolver: forbidden to read EndpointSlices of ${namespace}/${service} (${failure.error.message}); ` +
        `RBAC: grant verbs get, list, watch on resource endpointslices in API group discovery.k8s.io in namespace ${namespace} ` +
        'to this client\'s service account (a Role and RoleBinding: see docs/kubernetes.md#rbac)';
    } else if (failure.kind === 'unauthorized') {
      details = `kubernetes resolver: the API server ${this.informer.label.split(' ')[0]} refused our credentials (401 Unauthorized: ${failure.error.message}); ` +
        'the token is missing, wrong or expired';
    } else {
      details = `kubernetes resolver: cannot list or watch EndpointSlices of ${this.informer.label}: ${failure.error.message}; retrying` +
        (this.hasList ? ', serving the last list' : '');
    }
    if (failure.kind !== 'other') {
      this.reportedKey = `${failure.kind}:${this.informer.label}`;
      this.reportError(details, this.reportedKey);
    }
    this.trace(details);
    this.failedBeforeFirstList(details);
  }
}

/** Of one address's copies in several slices: a ready one (weight 1) first, then the first slice by name. */
function pickCopy(copies: ReadonlyMap<string, string>): string {
  let best: { name: string; value: string; ready: boolean } | undefined;
  for (const [name, value] of copies) {
    const ready = isReadyValue(value);
    if (!best || (ready && !best.ready) || (ready === best.ready && name < best.name)) best = { name, value, ready };
  }
  return best!.value;
}
