/** The installed discovery backends: `register()` installs them, `registerEndpoint()` chooses among them. */
import { registerResolver } from '../common/grpc-experimental';
import { type AnyBackend } from './backend';
import { resolverClassFor } from './discovery-resolver';

const installed = new Map<string, AnyBackend>();
/** Connection keys of the defaults `register()` set, by backend name: a different one later is an error. */
const defaultKeys = new Map<string, string>();

/** Registers each backend's scheme with grpc-js. Idempotent; a second, different backend under a taken name or scheme throws. */
export function installBackends(backends: readonly AnyBackend[]): void {
  for (const backend of backends) {
    const same = installed.get(backend.name);
    if (same === backend) continue;
    const clash = same ?? [...installed.values()].find(b => b.scheme === backend.scheme);
    if (clash) throw new Error(`discovery backend '${backend.name}' (scheme '${backend.scheme}') clashes with the installed '${clash.name}' (scheme '${clash.scheme}')`);
    installed.set(backend.name, backend);
    registerResolver(backend.scheme, resolverClassFor(backend));
  }
}

export function installedBackends(): readonly AnyBackend[] {
  return [...installed.values()];
}

/** Validates `register()`'s connections; returns a commit that sets them as defaults. Throws before setting anything. */
export function prepareDefaultConnections(options: Readonly<Record<string, unknown>>, backends: readonly AnyBackend[], component: string): () => void {
  const commits: Array<() => void> = [];
  for (const backend of backends) {
    if (options[backend.name] === undefined) continue;
    const connection: unknown = backend.validateConnection(options[backend.name], component);
    const key = backend.connectionKey(connection);
    // What register() set earlier and is still the default (tests may have reset it).
    const current = backend.defaultConnection();
    const had = defaultKeys.get(backend.name);
    const held = had !== undefined && current !== undefined && backend.connectionKey(current) === had ? had : undefined;
    if (held === key) continue;
    if (held !== undefined) {
      throw new Error(`${component}: already called with a different ${backend.name} connection. The default connection is process-wide: ` +
        `pass the same options, or name the hosts in the target (${backend.targetExample}).`);
    }
    commits.push(() => {
      defaultKeys.set(backend.name, key);
      backend.setDefaultConnection(connection);
    });
  }
  return () => commits.forEach(commit => commit());
}
