import { expect } from 'chai';
import { join } from 'node:path';
import { runTsChild, type TsChildResult } from '../../support/ts-child';

const CHILD = join(__dirname, 'config-errors-child.ts');

/** The point is the default verbosity: the child gets no GRPC_VERBOSITY / GRPC_TRACE from the caller. */
function runChild(): Promise<TsChildResult> {
  return runTsChild(CHILD, { GRPC_VERBOSITY: undefined, GRPC_NODE_VERBOSITY: undefined, GRPC_TRACE: undefined, GRPC_NODE_TRACE: undefined });
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

describe('etcd_* service configs: problems are printed at the default verbosity, once each', function () {
  let stderr: string;

  before(async function () {
    const out = await runChild();
    expect(out.stdout).to.equal('done\n');
    stderr = out.stderr;
  });

  it('an invalid value names the policy, the field and the value, without the policy name doubled', () => {
    const line = 'etcd_least_request: invalid service config {"choiceCount":"two"}: choiceCount must be an integer in [0, 1000000], got "two"';
    expect(count(stderr, line)).to.equal(1, stderr);
    expect(stderr).to.include('uses the next one, or pick_first if none is left');
    expect(stderr).not.to.include('etcd_least_request: etcd_least_request');
  });

  it('an unknown field is reported naming the known ones', () => {
    expect(count(stderr, "etcd_least_request: unknown field 'choiceCnt' (value 3) in its service config, ignored; known fields: choiceCount, healthCheck, slowStart")).to.equal(1, stderr);
    expect(count(stderr, "etcd_weighted_round_robin: unknown field 'healthCheck.serviceNmae' (value \"echo\") in its service config, ignored; known fields: serviceName")).to.equal(1, stderr);
  });

  it('a config nested as the child of outlier_detection is checked the same way', () => {
    expect(count(stderr, 'etcd_peak_ewma: invalid service config {"decayMs":"10s"}: decayMs must be an integer in [1, 3600000], got "10s"')).to.equal(1, stderr);
  });

  it('slowStart is checked for every policy: bad values rejected, misspelt fields named', () => {
    expect(count(stderr, 'etcd_weighted_random: invalid service config {"slowStart":{"windowMs":-5}}: slowStart.windowMs must be a number in (0, 86400000] (required), got -5')).to.equal(1, stderr);
    expect(count(stderr, "etcd_least_request: unknown field 'slowStart.agression' (value 2) in its service config, ignored; known fields: windowMs, aggression, minWeightPercent")).to.equal(1, stderr);
  });

  it('prints nothing else', () => {
    const lines = stderr.split('\n').filter(l => l.trim() !== '');
    expect(lines).to.have.length(6, stderr);
  });
});
