/**
 * `etcd_subset`'s service config, in the shape of gRFC A68's wrapper:
 * `{"etcd_subset":{"subsetSize":10,"childPolicy":[{"etcd_least_request":{}}]}}`.
 * `childPolicy` is a list, the first entry grpc-js can parse wins (as for
 * `outlier_detection`'s `child_policy`).
 */
import { parseLoadBalancingConfig, type TypedLoadBalancingConfig } from '../../common/grpc-experimental';
import { parsePolicyConfig } from '../policies/policy-config';

export const SUBSET_TYPE_NAME = 'etcd_subset';
/** Bound on `subsetSize`: far above any useful subset, low enough that slices stay cheap integers. */
export const MAX_SUBSET_SIZE = 100_000;

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export class EtcdSubsetConfig implements TypedLoadBalancingConfig {
  /**
   * @param subsetSize endpoints per priority tier this client connects to (k).
   * @param childPolicy the policy that balances over the subset.
   */
  constructor(readonly subsetSize: number, readonly childPolicy: TypedLoadBalancingConfig) {}

  getLoadBalancerName(): string {
    return SUBSET_TYPE_NAME;
  }

  toJsonObject(): object {
    return { [SUBSET_TYPE_NAME]: { subsetSize: this.subsetSize, childPolicy: [this.childPolicy.toJsonObject()] } };
  }

  /** Validates the service-config body; errors name the field and the bad value. */
  static createFromJson(json: unknown): EtcdSubsetConfig {
    return parsePolicyConfig(SUBSET_TYPE_NAME, json, ['subsetSize', 'childPolicy'], body => {
      for (const field of ['healthCheck', 'tagRouting', 'panicThresholdPercent']) {
        if (body[field] !== undefined) throw new Error(`${field} belongs in the child policy's config, not in etcd_subset's`);
      }
      const subsetSize = body.subsetSize;
      if (typeof subsetSize !== 'number' || !Number.isInteger(subsetSize) || subsetSize < 1 || subsetSize > MAX_SUBSET_SIZE) {
        throw new Error(`subsetSize must be an integer in [1, ${MAX_SUBSET_SIZE}] (required), got ${describe(subsetSize)}`);
      }
      const list = body.childPolicy;
      if (!Array.isArray(list) || list.length === 0) {
        throw new Error(`childPolicy must be a non-empty list like [{"etcd_least_request":{}}], got ${describe(list)}`);
      }
      const problems: string[] = [];
      for (const entry of list) {
        if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
          problems.push(`${describe(entry)} is not an object`);
          continue;
        }
        try {
          // grpc-js's parser, entry by entry (selectLbConfigFromList's rule) so the reasons can be named.
          return new EtcdSubsetConfig(subsetSize, parseLoadBalancingConfig(entry as Parameters<typeof parseLoadBalancingConfig>[0]));
        } catch (err) {
          problems.push((err as Error).message);
        }
      }
      throw new Error(`no usable childPolicy entry: ${problems.join('; ')}`);
    });
  }
}
