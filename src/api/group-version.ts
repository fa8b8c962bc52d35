/**
 * The API's group, version, kind and plural, in one place and apart from the
 * TypeBox schema: workflow code needs these strings, and importing the schema
 * would put TypeBox into the workflow bundle, which the worker evaluates once
 * per cached workflow. The CRD (crd.ts) and the Kubernetes clients
 * (kube/config.ts) derive their names from here.
 */
export const API_GROUP = 'omnia.altairalabs.ai';
/** The version alone, as in /apis/{group}/{version}/… and the CRD's spec.versions[].name. */
export const VERSION = 'v1alpha1';
/** What objects say in `apiVersion`: group/version. */
export const API_VERSION = `${API_GROUP}/${VERSION}`;
export const KIND = 'ArenaSource';
/** The resource name in URLs and the CRD's spec.names.plural. */
export const PLURAL = 'arenasources';
