/** Endpoint addresses: IP literals with a port (`1.2.3.4:80`, `[::1]:80`). */
import { isIPv4, isIPv6 } from 'node:net';

const DIALABLE = 'register the address clients dial, e.g. 10.0.0.5:50051 or [fd00::5]:50051';

/** A parsed endpoint address. */
export interface HostPort {
  /** IP literal, IPv6 without brackets, in canonical (compressed, lower-case) form. */
  host: string;
  /** 1-65535. */
  port: number;
}

/** Parses an IP-literal address; returns an error message instead of throwing. */
export function parseIpAddress(address: unknown): HostPort | string {
  if (typeof address !== 'string') return `address must be a string, got ${typeof address}`;
  if (address.length === 0 || address.length > 64) return `address '${truncate(address)}' must be 1-64 characters`;
  let host: string;
  let portText: string;
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close < 0 || address[close + 1] !== ':') return `address '${address}' must look like [ipv6]:port`;
    portText = address.slice(close + 2);
    const literal = address.slice(1, close);
    if (literal.includes('%')) return `address '${address}': IPv6 zone IDs are not supported`;
    if (!isIPv6(literal)) return `address '${address}' has an invalid IPv6 literal`;
    // One text per address (e.g. [0:0::1] and [::1] are one endpoint): the URL standard's compressed lower-case form.
    host = new URL(`http://[${literal}]/`).hostname.slice(1, -1);
  } else {
    const colon = address.lastIndexOf(':');
    if (colon < 0) return `address '${address}' needs a port (host:port)`;
    host = address.slice(0, colon);
    portText = address.slice(colon + 1);
    if (host === '') return `address '${address}' has no host: ${DIALABLE}`;
    if (isIPv6(host)) return `address '${address}': IPv6 literals need brackets, e.g. [${host}]:${portText}`;
    if (!isIPv4(host)) return `address '${address}' must be an IP literal (hostnames are not supported yet)`;
  }
  if (host === '0.0.0.0' || host === '::') {
    return `address '${address}' is the unspecified address, which a server binds to listen on every interface but no client can dial: ${DIALABLE}`;
  }
  if (!/^\d{1,5}$/.test(portText)) return `address '${address}' has an invalid port '${portText}'`;
  const port = Number(portText);
  if (port < 1 || port > 65535) return `address '${address}' has a port out of range 1-65535`;
  return { host, port };
}

/** Canonical `host:port` / `[v6]:port` text, as grpc-js's subchannelAddressToString writes it. */
export function formatAddress({ host, port }: HostPort): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
