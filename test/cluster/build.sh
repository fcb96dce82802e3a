#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager 1.20.2 from Debian's `kubernetes` source
# package (no download but Debian's archive) and caches them outside the clone, so a second run
# is instant. Prints the cache's bin directory on stdout.
#   TENANTD_KUBE_CACHE   cache directory (default ~/.cache/tenantd/kube-1.20.2)
set -euo pipefail

cache="${TENANTD_KUBE_CACHE:-$HOME/.cache/tenantd/kube-1.20.2}"
bin="$cache/bin"
if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kubectl" ]; then
  echo "$bin"
  exit 0
fi

log() { echo "cluster/build: $*" >&2; }
# One build at a time (two test runs may ask at once); the second finds it built.
mkdir -p "$cache"
exec 8>"$cache/.build.lock"
flock 8
if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kubectl" ]; then
  echo "$bin"
  exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian source packages: a deb-src twin of the bookworm entry.
src_list=/etc/apt/sources.list.d/tenantd-deb-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ /etc/apt/sources.list 2>/dev/null; then
  log "enabling Debian source packages ($src_list)"
  as_root tee "$src_list" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  as_root apt-get update -qq
fi

need=""
command -v go >/dev/null 2>&1 || need="$need golang-go"
command -v etcd >/dev/null 2>&1 || need="$need etcd-server"
command -v rsync >/dev/null 2>&1 || need="$need rsync"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
if [ -n "$need" ]; then
  log "installing$need"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi

work="$cache/src"
mkdir -p "$work"
cd "$work"
if ! ls kubernetes_*.orig.tar.* >/dev/null 2>&1; then
  log "downloading the kubernetes source package"
  apt-get source --download-only kubernetes >&2
fi
if [ ! -d tree ]; then
  log "unpacking"
  rm -rf tree.tmp && mkdir tree.tmp
  tar -xf kubernetes_*.orig.tar.* -C tree.tmp --strip-components=1
  mv tree.tmp tree
fi

gopath="$cache/gopath"
mkdir -p "$gopath/src/k8s.io"
ln -sfn "$work/tree" "$gopath/src/k8s.io/kubernetes"
cd "$gopath/src/k8s.io/kubernetes"
export GOPATH="$gopath" GO111MODULE=off GOFLAGS= GOCACHE="$cache/gocache"

if [ ! -f pkg/generated/openapi/zz_generated.openapi.go ]; then
  log "make generated_files (a few minutes)"
  make generated_files >&2
fi

# Both version packages, as hack/lib/version.sh sets them: /version is served from client-go's.
ldflags="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $pkg.gitVersion=v1.20.2 -X $pkg.gitMajor=1 -X $pkg.gitMinor=20 -X $pkg.gitTreeState=clean"
done
mkdir -p "$bin.tmp"
for cmd in kube-apiserver kube-controller-manager; do
  log "go build $cmd (a few minutes)"
  go build -ldflags "$ldflags" -o "$bin.tmp/$cmd" "./cmd/$cmd"
done
# kubectl of the same release, from Debian's kubernetes-client package, unpacked (not installed: it
# would clash with another package's /usr/bin/kubectl); the benchmark compares tenantd with it.
deb="$cache/deb"
mkdir -p "$deb"
if ! ls "$deb"/kubernetes-client_*.deb >/dev/null 2>&1; then
  log "downloading Debian's kubernetes-client"
  (cd "$deb" && apt-get download kubernetes-client >&2)
fi
dpkg -x "$deb"/kubernetes-client_*.deb "$deb/root"
cp "$deb/root/usr/bin/kubectl" "$bin.tmp/kubectl"
rm -rf "$bin" && mv "$bin.tmp" "$bin"
log "built into $bin"
echo "$bin"
