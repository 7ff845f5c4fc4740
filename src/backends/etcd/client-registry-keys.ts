/**
 * The client registry's etcd layout: key `_grpc_etcd_lb/clients/<service, URI-encoded>/<client id>`,
 * value `{"id","zone"?,"hostname","pid"}`. The prefix is reserved as a service name, so no
 * channel resolves clients as endpoints; the encoded service keeps `a` and `a/b` apart.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/** Reserved for the package's own keys (client registry, idempotency store): no service name may be this or start with it and `/`. */
export const RESERVED_PREFIX = '_grpc_etcd_lb';

/** The error message when a service name is reserved, or undefined. */
export function checkNotReserved(service: string): string | undefined {
  if (service === RESERVED_PREFIX || service.startsWith(`${RESERVED_PREFIX}/`)) {
    return `service names '${RESERVED_PREFIX}' and '${RESERVED_PREFIX}/…' are reserved for grpc-etcd-lb's own keys (the client registry, the idempotency store)`;
  }
  return undefined;
}

/** The etcd prefix under which the clients of `service` announce themselves (with the trailing slash). */
export function clientRegistryPrefix(service: string): string {
  return `${RESERVED_PREFIX}/clients/${encodeURIComponent(service)}/`;
}

/** A fresh client id: `<hostname>-<pid>-<random>`, no `/`. */
export function newClientId(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'host';
  return `${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** The announcement's value. */
export function encodeClientValue(id: string, zone: string | undefined): string {
  return JSON.stringify({ id, ...(zone === undefined ? {} : { zone }), hostname: hostname(), pid: process.pid });
}

/** The zone in an announcement, '' when none or unreadable: a value of a later version must not hide the client. */
export function decodeClientZone(value: Buffer): string {
  try {
    const parsed = JSON.parse(value.toString('utf8')) as { zone?: unknown };
    return typeof parsed?.zone === 'string' ? parsed.zone : '';
  } catch {
    return '';
  }
}
