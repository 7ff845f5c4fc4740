/**
 * A test-only resolver scheme, `lbtest:///<name>`: a static endpoint list with
 * per-endpoint weight/priority in `ENDPOINT_ATTRIBUTES_KEY`, changeable from the
 * test. It stands for "any resolver": the policies must not depend on etcd.
 */
import * as grpc from '@grpc/grpc-js';
import { ENDPOINT_ATTRIBUTES_KEY, type EndpointAttributes } from '../../../src/discovery/endpoint-attributes';
import {
  registerResolver, splitHostPort, statusOrFromError, statusOrFromValue,
  type Endpoint, type GrpcUri, type Resolver, type ResolverListener,
} from '../../../src/common/grpc-experimental';

export const STATIC_SCHEME = 'lbtest';

export interface StaticEndpoint {
  /** `127.0.0.1:port`. */
  address: string;
  /** Omitted = no attribute (the policy must default to 1). */
  weight?: number;
  /** Omitted = no attribute (the policy must default to 0). */
  priority?: number;
  /** Registration metadata (e.g. `{ zone: 'a' }`). */
  metadata?: Record<string, unknown>;
}

export interface StaticTargetOptions {
  /** Extra channel attributes every resolution carries (e.g. a `ClientRegistrySource` under `CLIENT_REGISTRY_SOURCE_KEY`). */
  attributes?: Record<string, unknown>;
}

export interface StaticTarget {
  /** The channel target, `lbtest:///<name>`. */
  readonly target: string;
  /** Times a channel asked this target to resolve (first resolution included). */
  readonly resolutions: number;
  /** Replaces the list and pushes it to every live resolver. */
  set(endpoints: StaticEndpoint[]): void;
  /** Pushes a resolution error (the list stays for later `set`/resolutions). */
  fail(details: string): void;
  /** Forgets the target. */
  dispose(): void;
}

interface TargetState {
  endpoints: StaticEndpoint[];
  resolutions: number;
  listeners: Set<StaticResolver>;
  attributes: Record<string, unknown>;
}

const targets = new Map<string, TargetState>();
let nextTargetId = 1;

function toResult(endpoints: StaticEndpoint[]): { list: Endpoint[]; attributes: Record<string, unknown> } {
  const map = new Map<string, EndpointAttributes>();
  const list: Endpoint[] = endpoints.map(e => {
    const hostPort = splitHostPort(e.address);
    if (!hostPort || hostPort.port === undefined) throw new Error(`static resolver: bad address ${e.address}`);
    if (e.weight !== undefined || e.priority !== undefined || e.metadata !== undefined) {
      map.set(e.address, { weight: e.weight ?? 1, priority: e.priority ?? 0, metadata: e.metadata ?? {} });
    }
    return { addresses: [{ host: hostPort.host, port: hostPort.port }] };
  });
  return { list, attributes: map.size > 0 ? { [ENDPOINT_ATTRIBUTES_KEY]: map } : {} };
}

class StaticResolver implements Resolver {
  private readonly state: TargetState | undefined;
  private scheduled: NodeJS.Immediate | undefined;

  constructor(private readonly uri: GrpcUri, private readonly listener: ResolverListener, _options: grpc.ChannelOptions) {
    this.state = targets.get(uri.path);
  }

  static getDefaultAuthority(): string {
    return 'localhost';
  }

  updateResolution(): void {
    if (this.state) {
      this.state.resolutions++;
      this.state.listeners.add(this);
    }
    this.push();
  }

  /** Never synchronously: grpc-js forbids calling the listener from updateResolution. */
  push(error?: string): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      if (!this.state) {
        this.listener(statusOrFromError({ code: grpc.status.UNAVAILABLE, details: `no static target ${this.uri.path}` }), {}, null, '');
      } else if (error !== undefined) {
        this.listener(statusOrFromError({ code: grpc.status.UNAVAILABLE, details: error }), {}, null, 'static failure');
      } else {
        const { list, attributes } = toResult(this.state.endpoints);
        this.listener(statusOrFromValue(list), { ...this.state.attributes, ...attributes }, null, 'static');
      }
    });
  }

  destroy(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.state?.listeners.delete(this);
  }
}

let registered = false;

/** Creates a target with its initial list (registers the scheme on first use). */
export function createStaticTarget(endpoints: StaticEndpoint[], options: StaticTargetOptions = {}): StaticTarget {
  if (!registered) {
    registerResolver(STATIC_SCHEME, StaticResolver);
    registered = true;
  }
  const name = `t${nextTargetId++}`;
  const state: TargetState = { endpoints: [...endpoints], resolutions: 0, listeners: new Set(), attributes: options.attributes ?? {} };
  targets.set(name, state);
  return {
    target: `${STATIC_SCHEME}:///${name}`,
    get resolutions() { return state.resolutions; },
    set(next) {
      state.endpoints = [...next];
      for (const resolver of state.listeners) resolver.push();
    },
    fail(details) {
      for (const resolver of state.listeners) resolver.push(details);
    },
    dispose() {
      for (const resolver of state.listeners) resolver.destroy();
      targets.delete(name);
    },
  };
}
