/** `registerEndpoint`: the server-side entry point of the registry. */
import { EtcdRegistration } from '../backends/etcd/etcd-registration';
import { ZkRegistration } from '../backends/zookeeper/zk-registration';
import { type Registration } from './registration';
import { resolveRegistrationOptions, type RegistrationOptions } from './registration-options';

/**
 * Announces `address` under `<service>/<address>` in etcd, in the Go
 * `naming/endpoints` format, under a lease of `ttlSeconds` that is kept alive —
 * or, with `zookeeper` (or only a ZooKeeper default), as an ephemeral Curator
 * `ServiceInstance` at `<basePath>/<service>/<id>` in a session of `ttlSeconds`.
 *
 * Resolves after the first successful put (and sets `health`, if given, to
 * SERVING). Rejects with a clear error on invalid options, when no etcd
 * connection is configured, or when etcd has not accepted the put within
 * `registerTimeoutMs` (nothing is left behind then).
 *
 * From then on the registration heals itself: if the lease or the key is lost
 * it writes the key again (keeping the old lease when etcd still has it), with
 * backoff capped at min(1 s, TTL/2), until `close()`. Watch it with
 * `onLost` / `onRegistered` / `onError`.
 *
 * @example
 * const health = new HealthImplementation();
 * health.addToServer(server);
 * const registration = await registerEndpoint({ service: 'echo', address: '10.0.0.5:50051', health });
 * shutdownOnSignals(server, registration);
 */
export async function registerEndpoint(options: RegistrationOptions): Promise<Registration> {
  const resolved = resolveRegistrationOptions(options);
  // Every timer and socket of a registration is unref'd (a registration must not keep a
  // server's process alive by itself), so with etcd unreachable and nothing else alive Node
  // would exit, silently and with code 0, before the promise settles. Hold the event loop
  // until it does: the caller is awaiting an answer, and gets one.
  const registration = resolved.zookeeper ? new ZkRegistration(resolved) : new EtcdRegistration(resolved);
  const holdOpen = setInterval(() => undefined, 60_000);
  try {
    await registration.waitRegistered(resolved.registerTimeoutMs);
  } catch (err) {
    await registration.close();
    throw err;
  } finally {
    clearInterval(holdOpen);
  }
  return registration;
}
