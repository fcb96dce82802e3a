import { TenantdError, isTenantdError } from '../core/errors.js';
import type { InfrastructureProvider, ProviderContext } from '../providers/provider.js';
import { createRenderProvider } from '../providers/render/provider.js';
import type { DaemonConfig } from './config.js';

/** Start-up problems of a provider's configuration are configuration errors: stop now, say why. */
const asConfigError = (err: unknown, field: string): unknown =>
  isTenantdError(err) && err.kind === 'stalled' ? new TenantdError('E_CONFIG', 'stalled', `--${field}: ${err.message}`, { field, cause: err.code }, { cause: err }) : err;

/**
 * The provider named by `--provider`. The kubernetes and pulumi providers are imported only when
 * chosen, so the embedded default never loads the Kubernetes client or the Pulumi SDK.
 */
export async function createProvider(config: DaemonConfig): Promise<InfrastructureProvider> {
  switch (config.provider) {
    case 'render':
      return createRenderProvider({ dataDir: config.dataDir });
    case 'kubernetes': {
      const k8s = await import('../providers/kubernetes/provider.js');
      try {
        const clusters = config.kube.clustersFile ? await k8s.loadClustersFile(config.kube.clustersFile) : undefined;
        return k8s.createKubernetesProvider({
          ...(config.kube.kubeconfig ? { kubeconfigPath: config.kube.kubeconfig } : {}),
          ...(config.kube.context ? { context: config.kube.context } : {}),
          ...(clusters ? { clusters } : {}),
          ...(config.kube.tenantRole
            ? { tenantRole: { clusterRole: config.kube.tenantRole.clusterRole, subject: k8s.subjectFromUserName(config.kube.tenantRole.subject) } }
            : {}),
        });
      } catch (err: unknown) {
        throw asConfigError(err, config.kube.clustersFile ? 'clusters-file' : 'kubeconfig');
      }
    }
    case 'pulumi': {
      const pulumi = await import('../providers/pulumi/provider.js');
      // With a cluster configured, Verify also waits for the workloads as the kubernetes provider does.
      const readiness =
        config.kube.kubeconfig || config.kube.context
          ? readinessVia(
              (await import('../providers/kubernetes/provider.js')).createKubernetesProvider({
                ...(config.kube.kubeconfig ? { kubeconfigPath: config.kube.kubeconfig } : {}),
                ...(config.kube.context ? { context: config.kube.context } : {}),
              }),
            )
          : undefined;
      const cli = await pulumi.checkPulumiCli();
      if (!cli.ok) throw new TenantdError('E_PULUMI_CLI_MISSING', 'stalled', `--provider pulumi: ${cli.message}`, { field: 'provider' });
      const naming = { project: config.pulumi.project, organization: config.pulumi.organization };
      try {
        const provider = pulumi.createPulumiProvider({
          dataDir: config.dataDir,
          ...naming,
          ...(config.pulumi.backend ? { backendUrl: config.pulumi.backend } : {}),
          ...(config.pulumi.secretsProvider ? { secretsProvider: config.pulumi.secretsProvider } : {}),
          ...(config.kube.kubeconfig ? { kubeconfig: config.kube.kubeconfig } : {}),
          ...(config.kube.context ? { kubeContext: config.kube.context } : {}),
          ...(readiness ? { verifyReadiness: readiness } : {}),
        });
        return Object.assign(provider, { stateKey: (id: string) => pulumi.stateKeyFor(id, naming) });
      } catch (err: unknown) {
        throw asConfigError(err, 'pulumi-backend');
      }
    }
  }
}

/** A readiness check for another provider's Verify: the kubernetes provider's own Verify (read-only waits). */
export function readinessVia(kubernetes: InfrastructureProvider): (ctx: ProviderContext) => Promise<{ summary: string; details?: Record<string, unknown> }> {
  return async (ctx) => {
    const result = await kubernetes.verify(ctx);
    return { summary: result.summary, ...(result.details ? { details: result.details } : {}) };
  };
}
