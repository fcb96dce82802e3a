/**
 * A kubeconfig is checked once, when the provider starts, for what would otherwise fail every phase
 * of every tenant forever: a context naming a cluster or user the file does not define, a server
 * that is not an http(s) URL, and a plain-HTTP server without `insecure-skip-tls-verify: true`
 * (client-node refuses those with "HTTP protocol is not allowed when skipTLSVerify is not set").
 */
import type { KubeConfig } from '@kubernetes/client-node';

/** One sentence per problem, each saying what to set; empty when the contexts are usable. */
export function kubeconfigProblems(kc: KubeConfig, contexts: readonly string[]): string[] {
  const problems: string[] = [];
  for (const name of [...new Set(contexts)].sort()) {
    const context = kc.getContextObject(name);
    if (!context) continue; // an unknown context is reported by its own check, with the known ones
    const cluster = kc.getCluster(context.cluster);
    if (!cluster) {
      problems.push(`context ${JSON.stringify(name)} names cluster ${JSON.stringify(context.cluster)}, which the kubeconfig does not define`);
      continue;
    }
    let url: URL | undefined;
    try {
      url = new URL(cluster.server);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      problems.push(`cluster ${JSON.stringify(cluster.name)} has server ${JSON.stringify(cluster.server)}, which is not an https:// (or http://) URL`);
    } else if (url.protocol === 'http:' && !cluster.skipTLSVerify) {
      problems.push(
        `cluster ${JSON.stringify(cluster.name)} has a plain-HTTP server ${cluster.server}: set \`insecure-skip-tls-verify: true\` on that cluster to allow unencrypted HTTP, or use the API server's https:// address`,
      );
    }
    if (context.user && !kc.getUser(context.user)) {
      problems.push(`context ${JSON.stringify(name)} names user ${JSON.stringify(context.user)}, which the kubeconfig does not define`);
    }
  }
  return problems;
}
