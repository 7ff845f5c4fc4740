import { expect } from 'chai';
import { BrokenCircuitError } from 'cockatiel';
import { GRPCDeadlineExceededError, GRPCUnavailableError, EtcdAuthenticationFailedError } from 'etcd3';
import { clockTime, describeEtcdFailure } from '../../../src/backends/etcd/etcd-error';

describe('etcd: failures in user terms', () => {
  it("extracts the cause from etcd3's pick_first text, without the empty resolution note", () => {
    const err = new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:9. Resolution note: ');
    expect(describeEtcdFailure(err)).to.deep.equal({ cause: 'connect ECONNREFUSED 127.0.0.1:9', unreachable: true });
  });

  it("names a connection that failed before with grpc-js's 'Last error: null' as no connection established", () => {
    const err = new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: null. Resolution note: ');
    expect(describeEtcdFailure(err)).to.deep.equal({ cause: 'no connection established', unreachable: true });
  });

  it("has nothing to say for the circuit breaker: the earlier failure is the cause", () => {
    expect(describeEtcdFailure(new BrokenCircuitError())).to.equal(undefined);
    expect(describeEtcdFailure(new Error('Execution prevented because the circuit breaker is open'))).to.equal(undefined);
  });

  it('says a deadline is no answer, and keeps answers from etcd as refusals', () => {
    expect(describeEtcdFailure(new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded'))).to.deep.equal({ cause: 'no answer before the deadline', unreachable: true });
    expect(describeEtcdFailure(new EtcdAuthenticationFailedError('etcdserver: authentication failed, invalid user ID or password')))
      .to.deep.equal({ cause: 'etcdserver: authentication failed, invalid user ID or password', unreachable: false });
    expect(describeEtcdFailure(new GRPCUnavailableError('14 UNAVAILABLE: etcdserver: leader changed'))).to.deep.equal({ cause: 'etcdserver: leader changed', unreachable: true });
  });

  it('names a gRPC server that is not etcd', () => {
    const err = new Error('12 UNIMPLEMENTED: The server does not implement the method /etcdserverpb.KV/Range');
    expect(describeEtcdFailure(err)).to.deep.equal({
      cause: 'The server does not implement the method /etcdserverpb.KV/Range (this server answers gRPC but is not etcd: check the etcd hosts, or ETCD_ENDPOINTS)',
      unreachable: false,
    });
  });

  it('clockTime is HH:MM:SS UTC', () => {
    expect(clockTime(Date.UTC(2026, 11, 1, 7, 5, 9, 500))).to.equal('07:05:09');
  });
});
