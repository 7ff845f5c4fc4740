/** Target URIs as grpc-js hands them to a resolver, for every backend. */

/** The parts of a grpc-js target (grpc-js's `GrpcUri`). */
export interface TargetUri {
  scheme?: string;
  authority?: string;
  path: string;
}

/** `foo/bar/svc` → `foo.bar.svc`, segments percent-encoded: a `/` in `:authority` makes every call fail. */
export function authorityForService(service: string): string {
  return service.split('/').map(segment => encodeURIComponent(segment)).join('.');
}

/** `scheme://authority/path` as the user wrote it. */
export function targetToString(target: TargetUri): string {
  const scheme = target.scheme === undefined ? '' : `${target.scheme}:`;
  return target.authority === undefined ? `${scheme}${target.path}` : `${scheme}//${target.authority}/${target.path}`;
}
