/**
 * The layer check (`npm run depcheck`, part of `npm test`): imports point down.
 *
 *   cli, api, oci                 front ends (cli may start the API: cli/commands/serve.ts;
 *                                 oci, novabox-oci, drives runtime directly: not a Nova server)
 *     -> compute, identity        use cases: the Nova model, Keystone
 *       -> images, runtime, store the image store, one container on one host, the database
 *         -> sys, util, model,    the kernel's door (the only FFI user), helpers, the records
 *            errors.ts            and state vocabulary (model/), error types
 *
 * A module may import its own tier and the tiers below it, never above; cli and api reach
 * runtime, store and sys only through compute, and images only through images/service.ts
 * (the Glance use cases: `image` commands and the image API); runtime imports neither
 * images nor store (in its tier, it is the one below them); no circles (type-only imports
 * count); only src/sys loads koffi or the Node-API module (native-bindings/build/novabox.node):
 * the static imports are checked here, the dynamic loads (createRequire, process.dlopen)
 * by the linter (scripts/lint/ffi-only-in-sys.grit).
 */
const tiers = [
  { name: 'front', path: '^src/(cli|api|oci)/' },
  { name: 'usecase', path: '^src/(compute|identity)/' },
  { name: 'service', path: '^src/(images|runtime|store)/' },
  { name: 'base', path: '^src/(sys|util|model)/|^src/errors\\.ts$' },
];

const upward = tiers.slice(1).map((t, i) => ({
  name: `no-up-from-${t.name}`,
  comment: `${t.name} (${t.path}) imports only its own tier and the tiers below it`,
  severity: 'error',
  from: { path: t.path },
  to: { path: tiers.slice(0, i + 1).map((u) => u.path).join('|') },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'front-ends-through-use-cases',
      comment: 'cli and api reach runtime, store and sys only through compute (or identity), and images only through its service (Glance)',
      severity: 'error',
      from: { path: '^src/(cli|api)/' },
      to: { path: '^src/(images|runtime|store|sys)/', pathNot: '^src/images/service\\.ts$' },
    },
    {
      name: 'oci-drives-runtime',
      comment: 'novabox-oci (an OCI container is not a Nova server) drives runtime directly, never the store, images, compute or the other front ends',
      severity: 'error',
      from: { path: '^src/oci/' },
      to: { path: '^src/(cli|api|compute|identity|images|store|sys)/' },
    },
    {
      name: 'runtime-knows-no-database',
      comment: 'runtime (one container on one host) imports neither the store nor the image store: what it needs comes as parameters',
      severity: 'error',
      from: { path: '^src/runtime/' },
      to: { path: '^src/(images|store)/' },
    },
    {
      name: 'no-api-to-cli',
      comment: 'the API is a front end of its own: it never imports the command line',
      severity: 'error',
      from: { path: '^src/api/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'cli-starts-api-only',
      comment: 'the command line reaches the API only through its entry point (novabox serve)',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: '^src/api/', pathNot: '^src/api/serve\\.ts$' },
    },
    {
      name: 'no-circular',
      comment: 'no import circles, also through lazy import()',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'ffi-only-in-sys',
      comment: 'only src/sys loads koffi or a Node-API module (the dynamic loads: scripts/lint/ffi-only-in-sys.grit)',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/sys/' },
      to: { path: '(^|/)node_modules/koffi/|\\.node$' },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/|^node_modules/koffi',
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js', '.mjs', '.cjs', '.node'] },
    builtInModules: { add: [] },
  },
};
