/**
 * One policy's pick measurements in a process of its own (see pick-measure.ts): argv[2] is a
 * `PickChildRequest` as JSON; the result is printed as the last line of stdout.
 */
import { register } from '../../src';
import { measurePolicies } from './pick-measure';
import { type PickChildRequest } from './pick';

const request = JSON.parse(process.argv[2] ?? '{}') as PickChildRequest;
register();
measurePolicies(request.policies, request.sizes, request.rounds, request.targetMs).then(
  result => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
