import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { MIN_DURATION_S, planScript } from '../../examples/demo/script';
import { etcdctl, startEtcd, type EtcdServer } from '../support/etcd';
import { freePort } from '../support/ports';
import { waitFor } from '../support/wait';

const ROOT = join(__dirname, '..', '..');

/** Runs a TS entry point the way a user would (tsx), in its own process. */
function run(script: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (b: Buffer) => { text += b.toString(); });
  child.stderr?.on('data', (b: Buffer) => { text += b.toString(); });
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)));
  return { child, output: () => text, exited };
}

describe('examples (run as a user would)', function () {
  this.timeout(120_000);
  let etcd: EtcdServer;
  const children: ChildProcess[] = [];

  before(async () => { etcd = await startEtcd(); });
  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await etcd.destroy();
  });

  it('examples/server.ts registers, examples/client.ts calls it, SIGTERM deregisters', async () => {
    const env = { ETCD_ENDPOINTS: etcd.endpoints.join(',') };
    const address = `127.0.0.1:${await freePort()}`;
    const server = run('examples/server.ts', [address], env);
    children.push(server.child);
    await waitFor('the example server to register', () => server.output().includes('registered in etcd'), { timeoutMs: 30_000 });
    expect(etcdctl(etcd.endpoints, ['get', '--print-value-only', `echo/${address}`])).to.include(`"Addr":"${address}"`);

    const client = run('examples/client.ts', [], env);
    children.push(client.child);
    expect(await client.exited, client.output()).to.equal(0);
    expect(client.output().match(/← /g)?.length).to.equal(10);
    expect(client.output()).to.include(`hello 9 ← ${address}`);

    server.child.kill('SIGTERM');
    expect(await server.exited, server.output()).to.equal(0);
    expect(etcdctl(etcd.endpoints, ['get', '--print-value-only', `echo/${address}`]).trim()).to.equal('');
  });
});

describe('npm run demo (plain mode, short)', function () {
  this.timeout(120_000);

  it(`runs the scripted events in the shortest duration (${MIN_DURATION_S} s), etcd restart recovered, zero failed calls`, async () => {
    const demo = run('examples/demo/demo.ts', ['--duration', String(MIN_DURATION_S), '--plain'], { ETCD_ENDPOINTS: '' });
    const code = await demo.exited;
    const out = demo.output();
    expect(out, out).to.match(/^failed calls: 0$/m);
    expect(code, out).to.equal(0);
    for (const banner of ['kill -9 r2', 'r5-new registered', 'r3 shuts down gracefully', 'etcd kill -9', 'etcd restarted', "the client saw r1's new weight"]) {
      expect(out, out).to.include(banner);
    }
    // Recovery after the etcd restart is in the summary: a change seen through etcd, calls served since.
    const recovered = /^ {2}etcd back: recovered, r1's weight change seen by the client (\d+) ms after the restart; (\d+) calls? served since$/m.exec(out);
    expect(recovered, out).to.not.equal(null);
    expect(Number(recovered![2]), out).to.be.greaterThan(0);
    // Plain mode: no cursor control.
    expect(out).to.not.include('\x1b[');
    const calls = Number(/^ {2}calls: (\d+)$/m.exec(out)?.[1]);
    expect(calls).to.be.greaterThan(1000);
  });

  it(`--registry zookeeper: the same script on a throwaway ZooKeeper (zk:///echo), its restart recovered, zero failed calls`, async () => {
    const demo = run('examples/demo/demo.ts', ['--duration', String(MIN_DURATION_S), '--plain', '--registry', 'zookeeper'], { ETCD_ENDPOINTS: '' });
    const code = await demo.exited;
    const out = demo.output();
    expect(out, out).to.match(/^failed calls: 0$/m);
    expect(code, out).to.equal(0);
    for (const banner of ['started a throwaway ZooKeeper', 'client: zk:///echo', 'r5-new registered in ZooKeeper', 'ZooKeeper kill -9', 'ZooKeeper restarted']) {
      expect(out, out).to.include(banner);
    }
    expect(out, out).to.match(/^ {2}ZooKeeper back: recovered, r1's weight change seen by the client \d+ ms after the restart; \d+ calls? served since$/m);
    expect(out).to.not.include('throwaway etcd');
  });

  it('--registry kubernetes: the same script on the Kubernetes API server double (kubernetes:///echo:grpc), zero failed calls', async () => {
    const demo = run('examples/demo/demo.ts', ['--duration', String(MIN_DURATION_S), '--plain', '--registry', 'kubernetes'], { ETCD_ENDPOINTS: '' });
    const code = await demo.exited;
    const out = demo.output();
    expect(out, out).to.match(/^failed calls: 0$/m);
    expect(code, out).to.equal(0);
    for (const banner of ['API server double', 'client: kubernetes:///echo:grpc', 'kill -9 r2', 'serving + terminating', 'the API server goes down']) {
      expect(out, out).to.include(banner);
    }
    expect(out, out).to.match(/^ {2}API server back: recovered, r6-after seen by the client \d+ ms after its slice changed; \d+ calls? served since$/m);
  });

  it(`--registry consul: the same script on the in-process Consul agent double (consul:///echo), its restart recovered, zero failed calls`, async () => {
    const demo = run('examples/demo/demo.ts', ['--duration', String(MIN_DURATION_S), '--plain', '--registry', 'consul'], { ETCD_ENDPOINTS: '' });
    const code = await demo.exited;
    const out = demo.output();
    expect(out, out).to.match(/^failed calls: 0$/m);
    expect(code, out).to.equal(0);
    for (const banner of ['Consul agent double', 'client: consul:///echo', 'r5-new registered in the Consul agent', 'the Consul agent restarted']) {
      expect(out, out).to.include(banner);
    }
    expect(out, out).to.match(/^ {2}the Consul agent back: recovered, r1's weight change seen by the client \d+ ms after the restart; \d+ calls? served since$/m);
  });

  it('refuses an unknown --registry, naming the known ones (exit code 2)', async () => {
    const demo = run('examples/demo/demo.ts', ['--registry', 'eureka', '--plain'], { ETCD_ENDPOINTS: '' });
    expect(await demo.exited, demo.output()).to.equal(2);
    expect(demo.output()).to.include('--registry must be one of etcd, zookeeper, kubernetes, consul, got eureka');
  });

  it('refuses a duration too short for the script, naming the minimum (exit code 2)', async () => {
    const demo = run('examples/demo/demo.ts', ['--duration', String(MIN_DURATION_S - 1), '--plain'], { ETCD_ENDPOINTS: '' });
    expect(await demo.exited, demo.output()).to.equal(2);
    expect(demo.output()).to.include(`--duration ${MIN_DURATION_S - 1} is too short: the minimum is ${MIN_DURATION_S} s`);
    expect(demo.output()).to.not.include('started a throwaway etcd');
  });

  it('scales the script to the duration: events in order, the last phase ending at the duration', () => {
    for (const durationS of [MIN_DURATION_S, 40, 600]) {
      const s = planScript(durationS);
      const times = [0, s.killS, s.joinS, s.leaveS, s.etcdKillS, s.endS];
      for (let i = 1; i < times.length; i++) expect(times[i], `${durationS} s`).to.be.greaterThan(times[i - 1]);
      expect(s.endS).to.equal(durationS);
    }
    expect(planScript(40)).to.deep.equal({ killS: 6, joinS: 11.6, leaveS: 19, etcdKillS: 25, endS: 40 });
    expect(() => planScript(MIN_DURATION_S - 0.5)).to.throw(RangeError, `at least ${MIN_DURATION_S} s`);
  });
});
