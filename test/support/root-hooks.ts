import { destroyAllEtcd } from './etcd';
import { stopAllEchoServers } from './echo-server';

/** Mocha root hooks: whatever a test left running is stopped, even when it failed. */
export const mochaHooks = {
  async afterAll(): Promise<void> {
    await stopAllEchoServers();
    await destroyAllEtcd();
  },
};
