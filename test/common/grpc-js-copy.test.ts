import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const INDEX = join(ROOT, 'src', 'index.ts');
const OURS = dirname(realpathSync(require.resolve('@grpc/grpc-js/package.json')));
/** What an app does on startup, twice: the warning must still print once. */
const APP_CODE = `const { register } = require(${JSON.stringify(INDEX)}); register(); register(); console.log('registered');\n`;

interface ChildResult { code: number | null; stdout: string; stderr: string }

/** Runs `args` (after tsx's loader) in a fresh node at default verbosity: register() is once per process. */
function runNode(args: string[], cwd: string): Promise<ChildResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['GRPC_VERBOSITY', 'GRPC_NODE_VERBOSITY', 'GRPC_TRACE', 'GRPC_NODE_TRACE']) delete env[k];
  return new Promise(resolve => {
    execFile(process.execPath, ['--require', require.resolve('tsx/cjs'), ...args], { cwd, env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

function warningsIn(stderr: string): string[] {
  return stderr.split('\n').filter(l => l.includes("grpc-etcd-lb: the app's @grpc/grpc-js is not the copy register() registered into"));
}

describe('register() with a second copy of @grpc/grpc-js in the app', function () {
  this.timeout(60_000);
  let app: string;
  let theirs: string;

  before(function () {
    // An app with its own grpc-js, as `npm install ../grpc-etcd-lb` (a symlink) leaves it.
    // Only resolution matters: the copy's package.json is enough, it is never loaded.
    app = realpathSync(mkdtempSync(join(tmpdir(), 'grpc-js-copy-')));
    theirs = join(app, 'node_modules', '@grpc', 'grpc-js');
    mkdirSync(theirs, { recursive: true });
    copyFileSync(join(OURS, 'package.json'), join(theirs, 'package.json'));
    writeFileSync(join(app, 'app.js'), APP_CODE);
  });

  after(function () {
    if (app) rmSync(app, { recursive: true, force: true });
  });

  function expectOneWarning(result: ChildResult, from: string): void {
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.contain('registered');
    expect(warningsIn(result.stderr), result.stderr).to.have.length(1);
    expect(result.stderr).to.contain(`registered into: ${OURS}\n`);
    expect(result.stderr).to.contain(`the app's copy:  ${theirs} (resolved from ${from})`);
    expect(result.stderr).to.contain('Failed to parse DNS address dns:etcd:///');
    expect(result.stderr).to.contain('npm ls @grpc/grpc-js');
  }

  it('warns once on stderr, naming both paths, when the working directory resolves another copy', async function () {
    expectOneWarning(await runNode(['-e', APP_CODE], app), app);
  });

  it("warns when the main module's directory resolves another copy", async function () {
    expectOneWarning(await runNode([join(app, 'app.js')], ROOT), app);
  });

  it('says nothing when the app resolves the same copy', async function () {
    const result = await runNode(['-e', APP_CODE], ROOT);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout).to.contain('registered');
    expect(warningsIn(result.stderr), result.stderr).to.deep.equal([]);
    expect(result.stderr).to.not.contain('grpc-etcd-lb:');
  });
});
