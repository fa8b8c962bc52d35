/** What RBAC lets a ServiceAccount do, asked of the test API server (test/helpers/kube.ts). */
import type { Kube } from './kube.js';

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
