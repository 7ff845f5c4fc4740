/**
 * One policy's pick measurements in a process of its own (see pick-measure.ts): argv[2] is a
 * `PickChildRequest` as JSON; the result is printed as the last line of stdout.
 */
import { register } from '../../src';
import { runChildMain } from '../../test/support/ts-child';
import { measurePolicies } from './pick-measure';
import { type PickChildRequest } from './pick';

const request = JSON.parse(process.argv[2] ?? '{}') as PickChildRequest;
register();
runChildMain(() => measurePolicies(request.policies, request.sizes, request.rounds, request.targetMs));
