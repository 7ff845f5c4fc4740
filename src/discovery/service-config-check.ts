/**
 * Service-config mistakes grpc-js passes over in silence: it skips a
 * `loadBalancingConfig` entry whose policy it does not know and falls back to
 * pick_first, so a misspelt `etcd_least_requests` sends every call to one replica
 * without a word. Our resolvers see the channel's `grpc.service_config` and say so,
 * once per channel target.
 */
import { type ChannelOptions } from '@grpc/grpc-js';
import { isLoadBalancerNameRegistered, log, logVerbosity } from '../common/grpc-experimental';
import { WarnOnce } from '../common/warn-once';

const errors = new WarnOnce();
const notes = new WarnOnce(text => log(logVerbosity.INFO, text));
let ourPolicies: readonly string[] = [];

/** The policy names this package registers (`register()` sets them), the candidates of "did you mean". */
export function setKnownPolicyNames(names: readonly string[]): void {
  ourPolicies = names;
}

/** Edit distance, for suggestions (names are short). */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** The closest of our policy names to `name`, if close enough to be what was meant. */
export function closestPolicyName(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of ourPolicies) {
    const d = distance(name.toLowerCase(), candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best !== undefined && (bestDistance <= Math.max(3, Math.floor(best.length / 4)) || name.startsWith('etcd_')) ? best : undefined;
}

/** Policy names of `loadBalancingConfig`, in order; undefined when the config is absent or not what grpc-js parses. */
function configuredPolicies(config: unknown): string[] | undefined {
  if (config === null || typeof config !== 'object') return undefined;
  const list = (config as { loadBalancingConfig?: unknown }).loadBalancingConfig;
  if (!Array.isArray(list)) return [];
  return list.flatMap(entry => (entry !== null && typeof entry === 'object' ? Object.keys(entry as object).slice(0, 1) : []));
}

/**
 * Logs, once per target: at ERROR an unknown policy name that looks like one of ours
 * (with the closest known name) or one given in the `loadBalancingPolicy` field (grpc-js
 * reads only `loadBalancingConfig`); at INFO which policy the channel uses when it is none
 * of ours. Never throws: a service config grpc-js cannot parse is reported by grpc-js.
 */
export function checkServiceConfig(channelOptions: ChannelOptions, target: string): void {
  const raw = channelOptions['grpc.service_config'];
  let config: unknown;
  try {
    config = typeof raw === 'string' ? JSON.parse(raw) : undefined;
  } catch {
    return;
  }
  const names = configuredPolicies(config) ?? [];
  const chosen = names.find(name => isLoadBalancerNameRegistered(name)) ?? 'pick_first';
  for (const name of names) {
    if (isLoadBalancerNameRegistered(name)) continue;
    const meant = closestPolicyName(name);
    if (meant === undefined) continue;
    errors.warn(`${target}: unknown LB policy '${name}' in grpc.service_config (did you mean '${meant}'?); ` +
      `grpc-js skips it, so this channel uses ${chosen}`, `${target}\n${name}`);
  }
  const legacy = config !== null && typeof config === 'object' ? (config as { loadBalancingPolicy?: unknown }).loadBalancingPolicy : undefined;
  if (typeof legacy === 'string' && !names.includes(legacy)) {
    errors.warn(`${target}: grpc.service_config names '${legacy}' in loadBalancingPolicy, which grpc-js ignores; ` +
      `use "loadBalancingConfig": [{ "${legacy}": {} }] (this channel uses ${chosen})`, `${target}\nloadBalancingPolicy`);
  }
  if (!ourPolicies.includes(chosen)) {
    notes.warn(`${target}: no etcd_* policy in grpc.service_config; this channel uses ${chosen}`, target);
  }
}
