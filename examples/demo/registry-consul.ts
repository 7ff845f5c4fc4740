/**
 * `npm run demo -- --registry consul`: the demo's registry is the in-process Consul agent
 * double (test/support/consul-agent-double.ts: no Consul can be installed here). Its
 * "kill -9" is an outage (the HTTP listener closes); its restart forgets every service and
 * restarts the index low, as a dev-mode agent does: registrations come back by themselves.
 */
import { startConsulAgentDouble, type ConsulAgentDouble } from '../../test/support/consul-agent-double';

/** What the demo does to its registry: kill, restart, destroy. */
export interface DemoConsul {
  readonly agent: ConsulAgentDouble;
  /** `host:port` of the agent's HTTP API. */
  readonly address: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
  restart(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startDemoConsul(): Promise<DemoConsul> {
  // Reaping as Consul does, but every 5 s instead of 30 s so a killed replica is removed within the demo.
  const agent = await startConsulAgentDouble({ reapIntervalMs: 5_000 });
  return {
    agent,
    address: agent.address,
    kill: () => agent.stop(),
    restart: () => agent.restart(),
    destroy: () => agent.close(),
  };
}
