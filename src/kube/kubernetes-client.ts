/**
 * The one module product code takes values (classes, functions) from @kubernetes/client-node
 * through; types are imported from the package directly. The package's entry loads all of its
 * generated API classes, whose source V8 keeps in the heap of every process that imports it
 * (≈ 16 MiB of the controller's ≈ 45 MiB heap); we use a handful. The build
 * (scripts/bundle-kube-client.mjs) replaces this module's compiled output with an esbuild bundle of
 * just what is exported here (the package's dependencies stay external), so controller and worker
 * load ≈ 15 MiB less heap. Without that step this module works the same, only larger.
 */
export { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, VersionApi, makeInformer, setHeaderOptions } from '@kubernetes/client-node';
