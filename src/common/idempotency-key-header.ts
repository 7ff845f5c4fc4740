/** The idempotency-key header, shared by the client side (retry interceptor) and the server side (idempotency interceptor). */

/** The header that carries the key unless an option says otherwise. */
export const DEFAULT_IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

/** A metadata key grpc-js accepts, lower case (HTTP/2 header names are). */
const HEADER_PATTERN = /^[0-9a-z_.-]+$/;

/** Checks a metadata key for the idempotency key; returns the error text, or undefined when valid. */
export function checkKeyHeader(header: unknown): string | undefined {
  if (typeof header !== 'string' || !HEADER_PATTERN.test(header)) return 'must be a lower-case metadata key ([0-9a-z_.-]+)';
  if (header.endsWith('-bin')) return 'must not end in -bin (the key is text)';
  if (header.startsWith('grpc-')) return "must not start with 'grpc-' (reserved by gRPC)";
  return undefined;
}
