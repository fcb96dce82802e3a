/**
 * Least-privilege access for tenantd on a cluster it shares (the Helm chart's RBAC): a cluster-wide
 * binding gives tenantd namespaces and nothing inside any namespace. Kubernetes RBAC cannot grant
 * "every namespace named tenant-*", so tenantd, in each tenant namespace it creates, binds a
 * ClusterRole (the kinds it renders, Secrets included) to itself with a RoleBinding of the role's
 * name — allowed by the `bind` verb on that one ClusterRole. Outside its tenant namespaces it then
 * cannot read a Secret or create a workload. See README "Running on Kubernetes" for what RBAC alone
 * cannot close (the `bind` grant works in any namespace).
 */
import { LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_PART_OF, LABEL_TENANT_ID, MANAGED_BY } from '../resources/renderer.js';
import type { KubeObject, KubeObjectRef } from '../resources/types.js';

export type RbacSubject = { kind: 'ServiceAccount'; name: string; namespace: string } | { kind: 'User'; name: string };

export interface TenantRole {
  /** The ClusterRole bound in each tenant namespace; the RoleBinding carries the same name. */
  clusterRole: string;
  /** Who tenantd is on the cluster (its ServiceAccount). */
  subject: RbacSubject;
}

const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([a-z0-9]([-a-z0-9]*[a-z0-9])?):([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/;

/** `system:serviceaccount:<ns>:<name>` is that ServiceAccount; any other user name is a User. */
export function subjectFromUserName(user: string): RbacSubject {
  const m = SERVICE_ACCOUNT_USER.exec(user);
  return m ? { kind: 'ServiceAccount', namespace: m[1]!, name: m[3]! } : { kind: 'User', name: user };
}

export const tenantRoleBindingRef = (role: TenantRole, namespace: string): KubeObjectRef => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'RoleBinding',
  name: role.clusterRole,
  namespace,
});

/**
 * The RoleBinding. Not in the inventory and never pruned: it must outlive every other object of the
 * namespace (tenantd needs it to delete them) and goes with the namespace.
 */
export function tenantRoleBinding(role: TenantRole, namespace: string, tenantId: string): KubeObject {
  const subject = role.subject.kind === 'ServiceAccount' ? { ...role.subject } : { apiGroup: 'rbac.authorization.k8s.io', ...role.subject };
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: {
      name: role.clusterRole,
      namespace,
      labels: { [LABEL_COMPONENT]: 'access', [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_PART_OF]: tenantId, [LABEL_TENANT_ID]: tenantId },
      annotations: { 'tenantd.io/description': "Lets tenantd manage this tenant's objects; removed with the namespace. Do not edit." },
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.clusterRole },
    subjects: [subject],
  };
}
