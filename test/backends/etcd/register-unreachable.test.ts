import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startEtcd } from '../../support/etcd';
import { freePort } from '../../support/ports';

const CHILD = join(__dirname, 'register-unreachable-child.ts');

describe('registerEndpoint with etcd unreachable and nothing else alive', function () {
  it('rejects within registerTimeoutMs + 1 s instead of letting the process exit silently', async function () {
    const registerTimeoutMs = 1500;
    // Nothing listens there: connections are refused at once, over and over.
    const etcd = `127.0.0.1:${await freePort()}`;
    const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>(resolve => {
      execFile(process.execPath, ['--require', 'tsx/cjs', CHILD], {
        env: { ...process.env, TEST_ETCD: etcd, TEST_REGISTER_TIMEOUT_MS: String(registerTimeoutMs) },
        timeout: 20_000,
      }, (err, out, errOut) => resolve({ stdout: out, stderr: errOut, code: err ? (err as { code?: number }).code ?? 1 : 0 }));
    });
    expect(stdout, `no answer before the child exited (code ${code}); stderr: ${stderr}`).not.to.equal('');
    const result = JSON.parse(stdout) as { outcome: string; message: string; elapsedMs: number };
    expect(result.outcome).to.equal('rejected');
    expect(result.message).to.include(`registerEndpoint: etcd at ${etcd} did not accept 'unreachable/127.0.0.1:50051' within ${registerTimeoutMs} ms`);
    expect(result.elapsedMs).to.be.at.least(registerTimeoutMs - 50).and.at.most(registerTimeoutMs + 1000);
    expect(code).to.equal(0);
  });

  it('a rejected duplicate registration leaves nothing holding the process open', async function () {
    const etcd = await startEtcd();
    try {
      const started = Date.now();
      const { stdout, stderr, code } = await new Promise<{ stdout: string; stderr: string; code: number | null }>(resolve => {
        execFile(process.execPath, ['--require', 'tsx/cjs', CHILD], {
          env: { ...process.env, TEST_ETCD: etcd.endpoint, TEST_SCENARIO: 'duplicate' },
          timeout: 20_000,
        }, (err, out, errOut) => resolve({ stdout: out, stderr: errOut, code: err ? (err as { code?: number }).code ?? null : 0 }));
      });
      expect(code, `child did not exit by itself (stderr: ${stderr})`).to.equal(0);
      expect(JSON.parse(stdout)).to.deep.include({ outcome: 'duplicate' });
      expect((JSON.parse(stdout) as { second: string }).second).to.match(/already registered by this process/);
      console.log(`      child exited by itself ${Date.now() - started} ms after start`);
    } finally {
      await etcd.destroy();
    }
  });
});
