/**
 * The layering rules of DESIGN.md, checked by `npm run deps` (part of `npm test`).
 * dependency-cruiser rather than eslint-plugin-import: it sees the whole module graph
 * (type-only imports included), names the broken rule in its output, and its path
 * rules can say "a backend imports no *other* backend" with a back-reference ($1).
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'No import cycles in src/: a cycle means two modules are one concept, or a contract is missing.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'discovery-is-the-core',
      severity: 'error',
      comment: 'The discovery core names no backend and knows nothing of policies, the interceptor or the server helpers.',
      from: { path: '^src/discovery/' },
      to: { path: '^src/(backends|balancer|interceptor|server)/|^src/(index|register)\\.ts$' },
    },
    {
      name: 'backend-imports-discovery-only',
      severity: 'error',
      comment: 'A backend is a plug-in: it imports the discovery core, the shared utilities (grpc-js adapter, backoff) and its own folder; never another backend, the balancer, the interceptor or the server helpers.',
      from: { path: '^src/backends/([^/]+)/' },
      to: { path: '^src/', pathNot: ['^src/(discovery|common)/', '^src/backends/$1/'] },
    },
    {
      name: 'balancer-imports-no-backend',
      severity: 'error',
      comment: 'Policies read what a resolver delivers through the contracts in src/discovery (endpoint attributes, client registry source), never a backend.',
      from: { path: '^src/balancer/' },
      to: { path: '^src/backends/' },
    },
    {
      name: 'backends-listed-in-one-place',
      severity: 'error',
      comment: 'Only the public API (register.ts, index.ts) and the backend list (src/backends/index.ts) reach into backends.',
      from: { path: '^src/', pathNot: ['^src/(index|register)\\.ts$', '^src/backends/', '^src/idempotency/'] },
      to: { path: '^src/backends/' },
    },
    {
      name: 'idempotency-uses-etcd-connection-only',
      severity: 'error',
      comment: 'The idempotency stores (server side, not a discovery backend) reuse the etcd connection options and pool of src/backends/etcd/connection.ts and its lease operations (lease-ops.ts), and nothing else of a backend; they import no discovery, balancer, interceptor or server code.',
      from: { path: '^src/idempotency/' },
      to: { path: '^src/', pathNot: ['^src/(idempotency|common)/', '^src/backends/etcd/(connection|lease-ops)\\.ts$'] },
    },
    {
      name: 'common-is-a-leaf',
      severity: 'error',
      comment: 'src/common holds package-wide utilities (grpc-js adapter, backoff, warnings); it imports nothing else of ours.',
      from: { path: '^src/common/' },
      to: { path: '^src/', pathNot: '^src/common/' },
    },
    {
      name: 'no-grpc-js-internals',
      severity: 'error',
      comment: 'Never deep-import grpc-js build/src; go through src/common/grpc-experimental.ts.',
      from: { path: '^src/' },
      // Every grpc-js import resolves into build/; only its entry point is allowed.
      to: { path: '@grpc/grpc-js/build/', pathNot: '@grpc/grpc-js/build/src/index\\.js$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
