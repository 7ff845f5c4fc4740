/** The ZooKeeper test support itself: start, restart with the same data, freeze/thaw, stop by PID, cleanup. */
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { fourLetterWord, runningZooKeeperCount, startZooKeeper, type ZooKeeperServer } from './zookeeper';
import { rawZk } from '../backends/zookeeper/zk-fixtures';

describe('test support: ZooKeeper', function () {
  this.timeout(90_000);
  let zk: ZooKeeperServer | undefined;

  after(async function () {
    await zk?.destroy();
  });

  it('starts on a free loopback port, keeps data and live sessions across kill -9 + restart, freezes and thaws, cleans up', async function () {
    const startedAt = Date.now();
    zk = await startZooKeeper();
    const upMs = Date.now() - startedAt;
    expect(zk.endpoint).to.match(/^127\.0\.0\.1:\d+$/);
    expect(await fourLetterWord(zk.port, 'ruok')).to.equal('imok');
    const raw = await rawZk(zk.endpoint);
    try {
      await raw.create('/support/persistent', 'p');
      await raw.create('/support/ephemeral', 'e', true);
      const pid = zk.pid;
      await zk.kill('SIGKILL');
      expect(zk.isRunning()).to.equal(false);
      expect(() => process.kill(pid!, 0)).to.throw();
      const restartAt = Date.now();
      await zk.restart();
      const restartMs = Date.now() - restartAt;
      expect(zk.pid).to.not.equal(pid);
      expect((await raw.get('/support/persistent'))?.data).to.equal('p');
      // The session (10 s) outlived the short restart, and with it its ephemeral node.
      expect((await raw.get('/support/ephemeral'))?.data).to.equal('e');
      zk.freeze();
      const frozen = await fourLetterWord(zk.port, 'ruok', 500).catch((err: Error) => err.message);
      zk.thaw();
      expect(frozen).to.match(/no answer within 500 ms/);
      expect(await fourLetterWord(zk.port, 'ruok', 5_000)).to.equal('imok');
      console.log(`      up in ${upMs} ms, restarted in ${restartMs} ms (persistent and ephemeral nodes kept), frozen: '${frozen}'`);
    } finally {
      raw.close();
    }
    const dir = zk.dataDir;
    const pid = zk.pid;
    await zk.destroy();
    expect(existsSync(dir)).to.equal(false);
    expect(() => process.kill(pid!, 0)).to.throw();
    expect(runningZooKeeperCount()).to.equal(0);
    zk = undefined;
  });
});
