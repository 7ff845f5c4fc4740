/** The absolute deadline of a call as grpc-js computes it, for the retrying and hedging calls. */
import { type InterceptorOptions, propagate } from '@grpc/grpc-js';

type Deadline = InterceptorOptions['deadline'];

function deadlineToMs(deadline: Deadline | undefined): number {
  if (deadline === undefined) return Infinity;
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/** The call's absolute deadline (epoch ms, Infinity for none), including a propagated parent deadline. */
export function callDeadlineMs(options: InterceptorOptions): number {
  const own = deadlineToMs(options.deadline);
  const parent = options.parent;
  if (parent && ((options.propagate_flags ?? propagate.DEFAULTS) & propagate.DEADLINE) !== 0) {
    return Math.min(own, deadlineToMs(parent.getDeadline()));
  }
  return own;
}
