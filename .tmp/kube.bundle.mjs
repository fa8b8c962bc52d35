// .tmp/kube-entry.mjs
import { VersionApi, PatchStrategy, makeInformer, setHeaderOptions, CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
export {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  VersionApi,
  makeInformer,
  setHeaderOptions
};
