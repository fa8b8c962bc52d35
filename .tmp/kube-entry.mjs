export { VersionApi, PatchStrategy, makeInformer, setHeaderOptions, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
