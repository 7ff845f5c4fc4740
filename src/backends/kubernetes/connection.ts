/** Kubernetes connections: `register({ kubernetes: { kubeconfig?, context? } })`, validation and the default. */

import { existsSync } from 'node:fs';

/** Where the Kubernetes API server and its credentials come from. Both fields optional: `{}` is the automatic choice. */
export interface KubernetesOptions {
  /**
   * Path of a kubeconfig file (several joined by `:`, as in `KUBECONFIG`). Defaults to in-cluster
   * (the pod's service account) when running in a pod, else `KUBECONFIG`, else `~/.kube/config`.
   */
  kubeconfig?: string;
  /** The kubeconfig context to use. Defaults to the kubeconfig's `current-context`. */
  context?: string;
}

/** Options after validation. */
export interface ResolvedKubernetesOptions {
  readonly kubeconfig: string | undefined;
  readonly context: string | undefined;
}

/** Throws a TypeError naming `component` when `options` is not a usable Kubernetes connection. */
export function validateKubernetesOptions(options: unknown, component: string): ResolvedKubernetesOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${component}: kubernetes options must be an object like { kubeconfig: '/path/to/config' } (or {}), got ${JSON.stringify(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (key !== 'kubeconfig' && key !== 'context') throw new TypeError(`${component}: unknown kubernetes option '${key}' (known: kubeconfig, context)`);
  }
  for (const key of ['kubeconfig', 'context'] as const) {
    const value = o[key];
    if (value !== undefined && (typeof value !== 'string' || value.trim() === '')) {
      throw new TypeError(`${component}: kubernetes ${key} must be a non-empty string, got ${JSON.stringify(value)}`);
    }
  }
  const kubeconfig = o.kubeconfig as string | undefined;
  if (kubeconfig !== undefined && !kubeconfig.split(':').some(path => path !== '' && existsSync(path))) {
    throw new TypeError(`${component}: kubernetes kubeconfig ${JSON.stringify(kubeconfig)}: no such file`);
  }
  return Object.freeze({ kubeconfig, context: o.context as string | undefined });
}

/** Stable identity of a connection. */
export function kubernetesConnectionKey(options: ResolvedKubernetesOptions): string {
  return `${options.kubeconfig ?? ''}|${options.context ?? ''}`;
}

/** The automatic connection: in-cluster, else `KUBECONFIG`, else `~/.kube/config`. */
export const AUTOMATIC_KUBERNETES_OPTIONS: ResolvedKubernetesOptions = Object.freeze({ kubeconfig: undefined, context: undefined });

let defaultConnection: ResolvedKubernetesOptions | undefined;

/** Sets the connection used by `kubernetes:///` targets (set by `register()`). */
export function setDefaultKubernetesOptions(options: ResolvedKubernetesOptions | undefined): void {
  defaultConnection = options;
}

/**
 * What `register({ kubernetes })` set, else undefined. Targets without one use the automatic
 * connection; undefined here keeps `registerEndpoint()` from choosing Kubernetes by default.
 */
export function getDefaultKubernetesOptions(): ResolvedKubernetesOptions | undefined {
  return defaultConnection;
}
