/**
 * `etcd_subset`: connects this client to a subset of each priority tier's
 * endpoints and lets a child policy balance over it (gRFC A68's wrapper shape):
 * deterministic aperture once the client registry gave this process its index
 * (subset-aperture.ts), A68 random subsetting (XXH64 of address and a seed per
 * balancer) until then or without one. Each tier is subset on its own, so
 * standbys stay connected for failover. The child gets the resolver's attribute
 * contract (one derived map patched in place, a new `Endpoint` only when its
 * attributes change), so its update stays O(changed) and a re-weight never
 * reconnects.
 */
import { type ChannelOptions } from '@grpc/grpc-js';
import {
  ChildLoadBalancerHandler, registerLoadBalancerType, statusOrFromValue, subchannelAddressToString, tracer,
  type ChannelControlHelper, type Endpoint, type LoadBalancer, type StatusOr, type TypedLoadBalancingConfig,
} from '../../common/grpc-experimental';
import { clientRegistrySourceFrom, type ClientRegistrySource, type ClientRegistrySubscription, type ClientRegistryView } from '../../discovery/client-registry-source';
import { DEFAULT_ENDPOINT_ATTRIBUTES, ENDPOINT_ATTRIBUTES_KEY, endpointAttributesFrom, type EndpointAttributes } from '../../discovery/endpoint-attributes';
import { apertureSlice } from './subset-aperture';
import { EtcdSubsetConfig, SUBSET_TYPE_NAME } from './subset-config';
import { SubsetRing } from './subset-ring';

const trace = tracer(SUBSET_TYPE_NAME);

/** The ring order every client shares in deterministic mode. */
const SHARED_SEED = 0n;

/** Injection points (unit tests; production uses the defaults). */
export interface SubsetBalancerOptions {
  /** Seed of A68 random subsetting, unsigned 64-bit. Defaults to a random one per balancer. */
  randomSeed?: bigint;
}

interface Member {
  readonly key: string;
  endpoint: Endpoint;
  attributes: EndpointAttributes;
  priority: number;
  seenAt: number;
  /** What the child was last given for it (kept while the inputs are the same objects and fraction). */
  child: { endpoint: Endpoint; attributes: EndpointAttributes; source: Endpoint; sourceAttributes: EndpointAttributes; fraction: number } | undefined;
}

export type SubsetMode = 'random' | 'deterministic';

function randomSeed(): bigint {
  const high = BigInt(Math.floor(Math.random() * 2 ** 32));
  const low = BigInt(Math.floor(Math.random() * 2 ** 32));
  return (high << 32n) | low;
}

export class EtcdSubsetLoadBalancer implements LoadBalancer {
  private readonly child: InstanceType<typeof ChildLoadBalancerHandler>;
  private readonly members = new Map<string, Member>();
  /** Address keys by `Endpoint` object: our resolver passes unchanged endpoints as the same objects. */
  private readonly keys = new WeakMap<Endpoint, string>();
  private readonly tiers = new Map<number, SubsetRing<Member>>();
  private ringSeed: bigint;
  private readonly randomSeed: bigint;
  private generation = 0;
  private config: EtcdSubsetConfig | undefined;
  private options: ChannelOptions = {};
  private note = '';
  private readonly childAttributes = new Map<string, EndpointAttributes>();
  private chosen = new Set<string>();
  private source: ClientRegistrySource | undefined;
  private subscription: ClientRegistrySubscription | undefined;
  private view: ClientRegistryView | undefined;
  private haveEndpoints = false;
  private destroyed = false;

  constructor(helper: ChannelControlHelper, options: SubsetBalancerOptions = {}) {
    this.child = new ChildLoadBalancerHandler(helper);
    this.randomSeed = options.randomSeed ?? randomSeed();
    this.ringSeed = this.randomSeed;
  }

  /** Which scheme the last subset was chosen by (diagnostics, tests). */
  get mode(): SubsetMode {
    return this.deterministicView() ? 'deterministic' : 'random';
  }

  updateAddressList(endpointList: StatusOr<Endpoint[]>, config: TypedLoadBalancingConfig, options: ChannelOptions, resolutionNote: string): boolean {
    if (!(config instanceof EtcdSubsetConfig) || this.destroyed) return false;
    this.config = config;
    this.options = options;
    this.note = resolutionNote;
    if (!endpointList.ok) {
      // The child decides (it keeps serving while it has endpoints, fails fast when it has none).
      return this.child.updateAddressList(endpointList, config.childPolicy, this.childOptions(), resolutionNote);
    }
    // Followed from lists only: an error update carries no source, and must not end the announcement.
    this.follow(clientRegistrySourceFrom(options));
    this.reconcile(endpointList.value, endpointAttributesFrom(options));
    this.haveEndpoints = true;
    return this.pushSubset(true);
  }

  exitIdle(): void {
    this.child.exitIdle();
  }

  resetBackoff(): void {
    this.child.resetBackoff();
  }

  destroy(): void {
    this.destroyed = true;
    this.subscription?.release();
    this.subscription = undefined;
    this.source = undefined;
    this.child.destroy();
  }

  getTypeName(): string {
    return SUBSET_TYPE_NAME;
  }

  /** Subscribes to the channel's fleet source (a new one replaces the old). */
  private follow(source: ClientRegistrySource | undefined): void {
    if (source === this.source) return;
    this.subscription?.release();
    this.source = source;
    this.subscription = undefined;
    this.view = undefined;
    if (!source) return;
    const subscription = source.subscribe(view => {
      if (this.subscription !== subscription || this.destroyed) return;
      this.view = view;
      if (this.haveEndpoints) this.pushSubset(false);
    });
    this.subscription = subscription;
    this.view = subscription.view;
  }

  private deterministicView(): ClientRegistryView | undefined {
    const view = this.view;
    return view !== undefined && view.selfIndex !== undefined && view.clientCount > 0 ? view : undefined;
  }

  /** One pass over the resolution: members keyed by address, each in its tier's ring. */
  private reconcile(endpoints: readonly Endpoint[], attributes: ReadonlyMap<string, EndpointAttributes> | undefined): void {
    const generation = ++this.generation;
    let seen = 0;
    for (const endpoint of endpoints) {
      if (endpoint.addresses.length === 0) continue;
      let key = this.keys.get(endpoint);
      if (key === undefined) {
        key = subchannelAddressToString(endpoint.addresses[0]);
        this.keys.set(endpoint, key);
      }
      const attrs = attributes?.get(key) ?? DEFAULT_ENDPOINT_ATTRIBUTES;
      let member = this.members.get(key);
      if (member === undefined) {
        member = { key, endpoint, attributes: attrs, priority: attrs.priority, seenAt: generation, child: undefined };
        this.members.set(key, member);
        this.ringOf(attrs.priority).set(key, member);
        seen++;
        continue;
      }
      if (member.seenAt !== generation) seen++;
      member.seenAt = generation;
      member.endpoint = endpoint;
      member.attributes = attrs;
      if (member.priority !== attrs.priority) {
        this.leaveRing(member);
        member.priority = attrs.priority;
        this.ringOf(member.priority).set(key, member);
      }
    }
    // Nothing left unless some member was not in this list (the common update: none).
    if (this.members.size === seen) return;
    for (const member of this.members.values()) {
      if (member.seenAt === generation) continue;
      this.members.delete(member.key);
      this.leaveRing(member);
    }
  }

  private ringOf(priority: number): SubsetRing<Member> {
    let ring = this.tiers.get(priority);
    if (ring === undefined) {
      ring = new SubsetRing<Member>(this.ringSeed);
      this.tiers.set(priority, ring);
    }
    return ring;
  }

  private leaveRing(member: Member): void {
    const ring = this.tiers.get(member.priority);
    if (ring === undefined) return;
    ring.delete(member.key);
    if (ring.size === 0) this.tiers.delete(member.priority);
  }

  /** Rebuilds the rings under another seed (only when the mode changes). */
  private reseed(seed: bigint): void {
    this.ringSeed = seed;
    this.tiers.clear();
    for (const member of this.members.values()) this.ringOf(member.priority).set(member.key, member);
  }

  /**
   * Chooses the subset of every tier and gives it to the child when it changed
   * (always after a resolution: the child also takes the resolution note).
   */
  private pushSubset(resolution: boolean): boolean {
    const config = this.config;
    if (config === undefined || this.destroyed) return false;
    const view = this.deterministicView();
    const seed = view ? SHARED_SEED : this.randomSeed;
    if (seed !== this.ringSeed) this.reseed(seed);
    const k = config.subsetSize;
    const chosen = new Set<string>();
    const endpoints: Endpoint[] = [];
    let changed = false;
    const take = (member: Member, fraction: number): void => {
      chosen.add(member.key);
      changed = this.giveToChild(member, fraction) || changed;
      endpoints.push((member.child as NonNullable<Member['child']>).endpoint);
    };
    for (const ring of this.tiers.values()) {
      if (view) {
        for (const { index, fraction } of apertureSlice(view.selfIndex as number, view.clientCount, ring.size, k)) take(ring.at(index), fraction);
      } else {
        for (let i = 0; i < ring.size && i < k; i++) take(ring.at(i), 1);
      }
    }
    for (const key of this.chosen) {
      if (chosen.has(key)) continue;
      this.childAttributes.delete(key);
      const member = this.members.get(key);
      if (member) member.child = undefined;
      changed = true;
    }
    this.chosen = chosen;
    if (!changed && !resolution) return true;
    if (trace.enabled) {
      const how = view ? `deterministic, client ${view.selfIndex} of ${view.clientCount}` : 'random';
      trace(`subset (${how}): ${endpoints.map(e => subchannelAddressToString(e.addresses[0])).join(', ')}`);
    }
    return this.child.updateAddressList(statusOrFromValue(endpoints), config.childPolicy, this.childOptions(), this.note);
  }

  /** Sets the member's child endpoint and derived attributes; true when they changed. */
  private giveToChild(member: Member, fraction: number): boolean {
    const given = member.child;
    if (given && given.source === member.endpoint && given.sourceAttributes === member.attributes && given.fraction === fraction) return false;
    const attributes = fraction === 1 ? member.attributes : { ...member.attributes, weight: member.attributes.weight * fraction };
    // A new Endpoint object tells the child to read the (patched) map again for this one.
    member.child = { endpoint: { addresses: member.endpoint.addresses }, attributes, source: member.endpoint, sourceAttributes: member.attributes, fraction };
    this.childAttributes.set(member.key, attributes);
    return true;
  }

  private childOptions(): ChannelOptions {
    return { ...this.options, [ENDPOINT_ATTRIBUTES_KEY]: this.childAttributes };
  }
}

export function setupSubset(): void {
  registerLoadBalancerType(SUBSET_TYPE_NAME, EtcdSubsetLoadBalancer, EtcdSubsetConfig);
}
