/** What RBAC lets a ServiceAccount do, asked of the test API server (test/helpers/kube.ts). */
import type { Kube } from './kube.js';
import { waitFor } from './wait.js';

export interface Access {
  verb: string;
  resource: string;
  /** API group ('' for the core group). */
  group?: string;
  subresource?: string;
  /** Namespace of the object ('' or absent for cluster-scoped). */
  namespace?: string;
  name?: string;
}

/** A SubjectAccessReview for system:serviceaccount:NAMESPACE:NAME; true when allowed. */
export async function serviceAccountCan(kube: Kube, sa: { namespace: string; name: string }, access: Access): Promise<boolean> {
  const { group = '', namespace, ...rest } = access;
  const res = await kube.request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: `system:serviceaccount:${sa.namespace}:${sa.name}`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${sa.namespace}`, 'system:authenticated'],
      resourceAttributes: { group, ...(namespace ? { namespace } : {}), ...rest },
    },
  });
  if (res.status !== 200 && res.status !== 201) throw new Error(`SubjectAccessReview: ${res.status} ${res.text}`);
  return res.body.status.allowed === true;
}

/**
 * Waits until a SubjectAccessReview allows `access`. The API server's RBAC authorizer reads roles and
 * bindings from an informer, so a review right after creating them may still answer from before.
 * Once one binding is seen, the ones created before it are too (the watch delivers them in order).
 */
export async function untilServiceAccountCan(kube: Kube, sa: { namespace: string; name: string }, access: Access, timeoutMs = 15_000): Promise<void> {
  await waitFor(`${sa.namespace}/${sa.name} allowed to ${access.verb} ${access.resource}`, () => serviceAccountCan(kube, sa, access), (allowed) => allowed, timeoutMs, 100);
}
