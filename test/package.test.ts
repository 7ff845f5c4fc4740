import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packRepo, REPO_ROOT as ROOT } from './support/npm-pack';

describe('the published package', function () {
  this.timeout(120_000);

  it('npm pack ships only dist/, protos/, README, LICENSE and package.json, and dist/ is the public contract', () => {
    // `npm pack` runs `prepack` (= npm run build) first, so this also proves the build works.
    const paths = packRepo().files;
    // No source maps: they would point at src/, which is not shipped.
    expect(paths.filter(p => p.endsWith('.map'))).to.deep.equal([]);
    const outside = paths.filter(p => !/^(dist\/|protos\/|README\.md$|LICENSE$|package\.json$)/.test(p));
    expect(outside).to.deep.equal([]);
    expect(paths).to.include.members(['dist/index.js', 'dist/index.d.ts', 'protos/echo.proto']);
    expect(paths.filter(p => p.startsWith('dist/') && /test|bench|examples/.test(p))).to.deep.equal([]);

    // Load dist/ in a fresh process, as a user's CommonJS app would.
    const probe = `
      const lb = require(${JSON.stringify(join(ROOT, 'dist', 'index.js'))});
      const grpc = require('@grpc/grpc-js');
      lb.register();
      const names = ['etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_least_request', 'etcd_peak_ewma'];
      console.log(JSON.stringify({
        exports: ['register', 'registerEndpoint', 'gracefulShutdown', 'shutdownOnSignals', 'createRetryInterceptor']
          .filter(n => typeof lb[n] === 'function'),
        policies: names.filter(n => grpc.experimental.isLoadBalancerNameRegistered(n)),
      }));`;
    const result = JSON.parse(execFileSync(process.execPath, ['-e', probe], { cwd: ROOT, encoding: 'utf8' })) as { exports: string[]; policies: string[] };
    expect(result.exports).to.deep.equal(['register', 'registerEndpoint', 'gracefulShutdown', 'shutdownOnSignals', 'createRetryInterceptor']);
    expect(result.policies).to.deep.equal(['etcd_weighted_round_robin', 'etcd_weighted_random', 'etcd_least_request', 'etcd_peak_ewma']);
  });

  it('builds in prepack, not prepare: installing the tarball runs no script of ours (git-URL installs still build: npm packs git dependencies)', () => {
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.prepack).to.equal('npm run build');
    expect(Object.keys(scripts).filter(k => /^(pre|post)?install$|^prepare$/.test(k))).to.deep.equal([]);
  });
});
