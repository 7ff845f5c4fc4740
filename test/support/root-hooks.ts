import { closeAllConsulAgentDoubles } from './consul-agent-double';
import { destroyAllEtcd } from './etcd';
import { stopAllEchoServers } from './echo-server';
import { killAllReplicas } from './replica-process';
import { destroyAllZooKeepers } from './zookeeper';

/** Mocha root hooks: whatever a test left running is stopped, even when it failed. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    await killAllReplicas();
    await stopAllEchoServers();
    await destroyAllEtcd();
    await destroyAllZooKeepers();
    await closeAllConsulAgentDoubles();
  },
};
