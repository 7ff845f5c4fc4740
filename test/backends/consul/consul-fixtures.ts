/** Helpers of the Consul tests: services written by raw HTTP as a Go client (consul/api) writes them, and what the agent reports passing. */
import { type ConsulAgentDouble } from '../../support/consul-agent-double';

/**
 * Registers a service the way a Go service does with `consul/api`: a TTL check that it
 * passes itself (here once, with a long TTL), or on another node through the catalog.
 */
export async function goStyleRegister(
  agent: ConsulAgentDouble, service: Record<string, unknown>, other?: { node: string; nodeAddress: string },
): Promise<void> {
  if (other) {
    await put(agent, '/v1/catalog/register', { Node: other.node, Address: other.nodeAddress, Service: { ...service, Service: service.Name } });
    return;
  }
  await put(agent, '/v1/agent/service/register', { ...service, Check: { TTL: '60s', DeregisterCriticalServiceAfter: '1m' } });
  await put(agent, `/v1/agent/check/pass/${encodeURIComponent(`service:${String(service.ID)}`)}`);
}

async function put(agent: ConsulAgentDouble, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${agent.url}${path}`, { method: 'PUT', body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`PUT ${path}: ${res.status} ${await res.text()}`);
}

/** IDs of the passing instances of `service`, as `?passing=true` answers. */
export async function passingIds(agent: ConsulAgentDouble, service: string): Promise<string[]> {
  const res = await fetch(`${agent.url}/v1/health/service/${encodeURIComponent(service)}?passing=true`);
  return ((await res.json()) as Array<{ Service: { ID: string } }>).map(e => e.Service.ID);
}
