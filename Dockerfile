# syntax=docker/dockerfile:1
# Production image for tenantd. Cannot be built on the development machines (no Docker engine);
# kept plain so it is easy to review.

ARG NODE_VERSION=20
ARG PULUMI_VERSION=3.190.0
ARG PULUMI_KUBERNETES_VERSION=4.34.2

# --- build: compile TypeScript with the full dependency tree ---
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY core ./core
COPY daemon ./daemon
COPY api ./api
COPY providers ./providers
COPY bench ./bench
COPY web ./web
COPY schemas ./schemas
RUN npm run build && npm prune --omit=dev

# --- pulumi: the official CLI and the Kubernetes plugin, fetched at build time so the image works offline ---
FROM debian:bookworm-slim AS pulumi
ARG PULUMI_VERSION
ARG PULUMI_KUBERNETES_VERSION
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL https://get.pulumi.com | sh -s -- --version "${PULUMI_VERSION}" \
 && /root/.pulumi/bin/pulumi plugin install resource kubernetes "v${PULUMI_KUBERNETES_VERSION}"

# --- runtime: non-root, git for the tenants repository, no build tools ---
FROM node:${NODE_VERSION}-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates tini && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    TENANTD_DATA_DIR=/var/lib/tenantd \
    TENANTD_LOG_FORMAT=json \
    PULUMI_HOME=/home/node/.pulumi \
    PATH=/home/node/.pulumi/bin:$PATH
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY schemas ./schemas
COPY tenants-example ./tenants-example
COPY --from=pulumi --chown=node:node /root/.pulumi /home/node/.pulumi
RUN mkdir -p /var/lib/tenantd && chown node:node /var/lib/tenantd
USER node
VOLUME ["/var/lib/tenantd"]
EXPOSE 8089
# The API's /healthz answers once the daemon runs; until the API lands, the process itself is the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8089)+'/healthz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/daemon/cli.js"]
CMD ["daemon"]
