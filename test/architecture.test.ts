/**
 * The layering rules of .dependency-cruiser.cjs (`npm run deps` checks src/ itself):
 * each rule must fail, by name, on a violation planted in a copy of src/.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const ROOT = join(__dirname, '..');
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');

/** Planted file → [its source, the rule that must name it (a cycle is reported once, from its first file)]. */
const PLANTED: Record<string, [string, string | undefined]> = {
  'src/discovery/planted-core.ts': ["export { attachSteering } from '../balancer/call-steering';\n", 'discovery-is-the-core'],
  'src/backends/zookeeper/planted-backend.ts': ["export { normalizeHosts } from '../etcd/connection';\n", 'backend-imports-discovery-only'],
  'src/balancer/planted-balancer.ts': ["export { normalizeHosts } from '../backends/etcd/connection';\n", 'balancer-imports-no-backend'],
  'src/interceptor/planted-reach.ts': ["export { BACKENDS } from '../backends';\n", 'backends-listed-in-one-place'],
  'src/idempotency/planted-store.ts': ["export { checkNotReserved } from '../backends/etcd/client-registry-keys';\n", 'idempotency-uses-etcd-connection-only'],
  'src/common/planted-leaf.ts': ["export { parseIpAddress } from '../discovery/address';\n", 'common-is-a-leaf'],
  'src/common/planted-cycle-a.ts': ["import { b } from './planted-cycle-b';\nexport const a = (): number => b() + 1;\n", 'no-cycles'],
  'src/common/planted-cycle-b.ts': ["import { a } from './planted-cycle-a';\nexport const b = (): number => a() - 1;\n", undefined],
  'src/metrics/planted-internals.ts': ["export { Http2SubchannelConnector } from '@grpc/grpc-js/build/src/transport';\n", 'no-grpc-js-internals'],
};

function depcruise(cwd: string): Promise<{ code: number; output: string }> {
  return new Promise(resolve => {
    execFile(DEPCRUISE, ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, output: stdout + stderr });
    });
  });
}

describe('architecture: dependency rules', function () {
  this.timeout(60_000);
  let dir: string | undefined;

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('src/ breaks none of them', async () => {
    const { code, output } = await depcruise(ROOT);
    expect(output).to.not.match(/error /);
    expect(code).to.equal(0);
  });

  it('each rule fails a planted violation, naming the rule and the file', async () => {
    dir = mkdtempSync(join(tmpdir(), 'grpc-etcd-lb-deps-'));
    cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
    cpSync(join(ROOT, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
    cpSync(join(ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    for (const [file, [source]] of Object.entries(PLANTED)) {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      writeFileSync(join(dir, file), source);
    }
    const { code, output } = await depcruise(dir);
    expect(code).to.not.equal(0);
    for (const [file, [, rule]] of Object.entries(PLANTED)) {
      if (rule === undefined) continue;
      expect(output, `${rule} on ${file}`).to.match(new RegExp(`error ${rule}: ${file.replace(/\./g, '\\.')}`));
    }
  });
});
