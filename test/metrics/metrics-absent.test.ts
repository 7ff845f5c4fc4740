import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

describe('metrics without @opentelemetry/api installed', function () {
  it('registers, balances and retries with no metrics and no error', async function () {
    const out = await new Promise<Record<string, unknown>>((resolve, reject) => {
      execFile(process.execPath, ['--require', 'tsx/cjs', join(__dirname, 'no-otel-child.ts')], { timeout: 30_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`child failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>);
      });
    });
    expect(out).to.deep.equal({ server: 'solo', apiLoaded: false, metrics: null, activeCalls: 0 });
  });
});
