/**
 * The etcd store's values: a claim `{"s":"r","h":<request hash>,"o":<owner>}` or a result
 * `{"s":"d","h","c","d","m"?,"t","hd"?}` (JSON, the response base64; `hd` the response
 * headers), so `etcdctl get` shows them.
 */
import { type IdempotencyResult } from './idempotency-store';

/** A decoded value: a claim in progress, or a result. */
export type StoredValue =
  | { readonly state: 'running'; readonly requestHash: string }
  | { readonly state: 'done'; readonly result: IdempotencyResult };

export function encodeClaim(requestHash: string, owner: string): string {
  return JSON.stringify({ s: 'r', h: requestHash, o: owner });
}

export function encodeResult(result: IdempotencyResult): string {
  return JSON.stringify({
    s: 'd',
    h: result.requestHash,
    c: result.code,
    d: result.details,
    ...(result.response === undefined ? {} : { m: result.response.toString('base64') }),
    t: result.trailers,
    ...(result.headers === undefined ? {} : { hd: result.headers }),
  });
}

/** The value under a key, or undefined when it is not one of ours (written by something else). */
export function decodeStoredValue(raw: Buffer | string): StoredValue | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(raw.toString()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || typeof value.h !== 'string') return undefined;
  if (value.s === 'r') return { state: 'running', requestHash: value.h };
  if (value.s !== 'd' || typeof value.c !== 'number' || typeof value.d !== 'string') return undefined;
  const trailers = decodePairs(value.t);
  const headers = value.hd === undefined ? undefined : decodePairs(value.hd);
  if (trailers === undefined || (value.hd !== undefined && headers === undefined)) return undefined;
  return {
    state: 'done',
    result: {
      requestHash: value.h,
      code: value.c,
      details: value.d,
      response: typeof value.m === 'string' ? Buffer.from(value.m, 'base64') : undefined,
      trailers,
      ...(headers === undefined ? {} : { headers }),
    },
  };
}

/** `[[key, value], …]` of strings, or undefined when it is not that. */
function decodePairs(raw: unknown): Array<readonly [string, string]> | undefined {
  if (!Array.isArray(raw)) return undefined;
  const pairs: Array<readonly [string, string]> = [];
  for (const pair of raw as unknown[]) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') return undefined;
    pairs.push([pair[0], pair[1]]);
  }
  return pairs;
}
