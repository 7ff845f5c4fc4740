/** `registerEndpoint` for any backend: which registry a registration goes to, and its first write. */
import { type AnyBackend } from './backend';
import { type Registration } from './registration';
import { resolveRegistrationOptions, type EndpointRegistrationOptions } from './registration-options';

const COMPONENT = 'registerEndpoint';

/** The registry a registration goes to: the one connection given, else the one default set. */
export function chooseRegistry(
  options: EndpointRegistrationOptions, backends: readonly AnyBackend[],
): { backend: AnyBackend; connection: unknown } {
  const refused = backends.filter(b => b.createRegistration === undefined && (options as unknown as Record<string, unknown>)[b.name] !== undefined);
  if (refused.length > 0) {
    throw new TypeError(`${COMPONENT}: the ${refused[0].name} backend takes no registrations: ${refused[0].connectionHint}`);
  }
  backends = backends.filter(b => b.createRegistration !== undefined);
  const given = options as unknown as Record<string, unknown>;
  const named = backends.filter(b => given[b.name] !== undefined);
  const fail = (message: string): never => {
    throw new TypeError(`${COMPONENT}: ${message}`);
  };
  if (named.length > 1) {
    fail(`give either ${named.map(b => b.name).join(' or ')}, not both: a registration goes to one registry (call registerEndpoint once per registry)`);
  }
  if (named.length === 1) {
    const backend = named[0];
    return { backend, connection: backend.validateConnection(given[backend.name], COMPONENT) };
  }
  const withDefault = backends.filter(b => b.defaultConnection() !== undefined);
  if (withDefault.length > 1) {
    fail(`${withDefault.length === 2 ? 'both ' : ''}${withDefault.map(b => b.defaultDescription).join(' and ')} are set: ` +
      `pass ${withDefault.map(b => `{ ${b.name}: {...} }`).join(' or ')} to say where this registration goes`);
  }
  if (withDefault.length === 0) {
    fail(`no registry connection: ${backends.map(b => b.connectionHint).join('; or ')}`);
  }
  const backend = withDefault[0];
  return { backend, connection: backend.validateConnection(backend.defaultConnection(), COMPONENT) };
}

/** Resolves after the first write; rejects, leaving nothing behind, on bad options or after `registerTimeoutMs`. */
export async function registerEndpointOn(options: EndpointRegistrationOptions, backends: readonly AnyBackend[]): Promise<Registration> {
  const resolved = resolveRegistrationOptions(options);
  const { backend, connection } = chooseRegistry(options, backends);
  // chooseRegistry returns only backends that register.
  const registration = backend.createRegistration!(resolved, connection);
  // A registration's timers are unref'd, so with the registry unreachable Node could exit
  // silently before the promise settles; hold the event loop until it does.
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
