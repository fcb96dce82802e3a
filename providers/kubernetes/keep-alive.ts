/**
 * Connection reuse for client-node. client-node 1.x builds a new https.Agent for every request
 * (KubeConfig.applySecurityAuthentication → createAgent), so every request to the API server opens
 * a new TCP connection and TLS handshake. This authentication wrapper lets client-node do its work
 * (tokens, exec plugins, client certificates, proxies) and then swaps a plain http(s) agent for one
 * kept-alive agent per set of TLS options, so requests to one cluster share a few connections.
 * Proxy agents (proxy-url in the kubeconfig) are left as client-node made them.
 */
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig, RequestContext, SecurityAuthentication } from '@kubernetes/client-node';

/** Sockets per cluster: enough for the provider's concurrent tenants, bounded. */
const MAX_SOCKETS = 16;

type TlsOptions = Pick<https.AgentOptions, 'ca' | 'cert' | 'key' | 'pfx' | 'passphrase' | 'rejectUnauthorized' | 'servername'>;

export class KeepAliveAuthentication implements SecurityAuthentication {
  private readonly agents = new Map<string, http.Agent>();

  constructor(private readonly kubeConfig: KubeConfig) {}

  getName(): string {
    return 'KeepAlive';
  }

  async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.kubeConfig.applySecurityAuthentication(context);
    const made = context.getAgent();
    // Exactly Node's own agents: subclasses are proxy agents with state of their own.
    if (made && (made.constructor === https.Agent || made.constructor === http.Agent)) context.setAgent(this.shared(made));
  }

  /** One kept-alive agent per protocol and TLS options (client certificates rotate: a new key, a new agent). */
  private shared(made: http.Agent): http.Agent {
    const isHttps = made instanceof https.Agent;
    const o = (made as unknown as { options: TlsOptions }).options ?? {};
    const tls: TlsOptions = { ca: o.ca, cert: o.cert, key: o.key, pfx: o.pfx, passphrase: o.passphrase, rejectUnauthorized: o.rejectUnauthorized, servername: o.servername };
    const key = `${isHttps ? 'https' : 'http'}:${JSON.stringify(tls)}`;
    let agent = this.agents.get(key);
    if (!agent) {
      const common = { keepAlive: true, maxSockets: MAX_SOCKETS, maxFreeSockets: MAX_SOCKETS, timeout: 60_000 };
      agent = isHttps ? new https.Agent({ ...common, ...tls }) : new http.Agent(common);
      // Certificates rotate rarely; a handful of keys at most, but never unbounded.
      if (this.agents.size >= 8) this.close();
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** Closes every kept-alive connection (the provider is closing). */
  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}
