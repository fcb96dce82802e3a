#!/usr/bin/env bash
# Starts a real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver and
# kube-controller-manager 1.20.2 built from Debian's source package (test/cluster/build.sh).
#   test/cluster/up.sh DIR     start it (idempotent) and write DIR/kubeconfig; exit 0 once /readyz answers
#   test/cluster/down.sh DIR   stop it
# There is no kubelet, scheduler or CNI: no pod ever runs. Tests write workload status themselves.
# Only controllers that work without a kubelet run; the workload controllers would overwrite the
# readiness a test writes. TENANTD_KUBE_APISERVER_ARGS adds kube-apiserver flags (the benchmark
# turns on an audit log); a DIR/tokens.csv written beforehand is used as it is.
set -euo pipefail

dir="${1:?usage: test/cluster/up.sh DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
log() { echo "cluster/up: $*" >&2; }

# One starter at a time per DIR; a second caller waits and then finds it running.
exec 9>"$dir/.lock"
flock 9

token_of() { head -1 "$dir/tokens.csv" | cut -d, -f1; }
api_ready() {
  [ -f "$dir/apiserver.port" ] || return 1
  curl -fsk --max-time 5 -H "Authorization: Bearer $(token_of)" "https://127.0.0.1:$(cat "$dir/apiserver.port")/readyz" >/dev/null 2>&1
}
alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

if alive etcd && alive kube-apiserver && alive kube-controller-manager; then
  # Running: wait for it to answer (a loaded machine is slow) rather than restart it under the
  # feet of whoever else uses it.
  for _ in $(seq 1 300); do
    api_ready && exit 0
    sleep 0.2
  done
  log "the control plane in $dir runs but does not answer /readyz (see $dir/logs/)"
  exit 1
fi
# Anything half-started from an earlier run goes first.
"$here/down.sh" "$dir" >/dev/null 2>&1 || true

bin="${TENANTD_KUBE_BIN:-$("$here/build.sh")}"
echo "$bin" > "$dir/bin.path"
command -v etcd >/dev/null || { log "etcd is not installed (apt-get install etcd-server)"; exit 1; }

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
while [ "$peer_port" = "$etcd_port" ]; do peer_port=$(free_port); done
while [ "$api_port" = "$etcd_port" ] || [ "$api_port" = "$peer_port" ]; do api_port=$(free_port); done

mkdir -p "$dir/certs" "$dir/logs"
rm -rf "$dir/etcd-data"
if [ ! -f "$dir/sa.key" ]; then
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
fi
if [ ! -f "$dir/tokens.csv" ]; then
  # The admin, and a user with no role at all (tests of a 403 use it).
  { echo "$(openssl rand -hex 24),admin,admin,system:masters"; echo "$(openssl rand -hex 24),nobody,nobody"; } > "$dir/tokens.csv"
  chmod 600 "$dir/tokens.csv"
fi

start() { # name logfile command…
  local name=$1; shift
  # 9>&-: the lock's descriptor must not outlive this script in the servers (they would hold it forever).
  setsid nohup "$@" > "$dir/logs/$name.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$dir/$name.pid"
}

start etcd etcd --name tenantd-test --data-dir "$dir/etcd-data" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "tenantd-test=http://127.0.0.1:$peer_port" --log-level warn
echo "$etcd_port" > "$dir/etcd.port"
for _ in $(seq 1 100); do
  curl -fs --max-time 1 "http://127.0.0.1:$etcd_port/health" >/dev/null 2>&1 && break
  alive etcd || { log "etcd exited:"; tail -20 "$dir/logs/etcd.log" >&2; exit 1; }
  sleep 0.1
done

echo "$api_port" > "$dir/apiserver.port"
start kube-apiserver "$bin/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$etcd_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" --insecure-port 0 \
  --cert-dir "$dir/certs" \
  --token-auth-file "$dir/tokens.csv" --authorization-mode RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 \
  --enable-priority-and-fairness=false --profiling=false --logtostderr -v 0 \
  ${TENANTD_KUBE_APISERVER_ARGS:-}

# The kubeconfig the admin uses (and the controller manager).
cat > "$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
  - name: tenantd-test
    cluster:
      server: https://127.0.0.1:$api_port
      insecure-skip-tls-verify: true
users:
  - name: admin
    user:
      token: $(token_of)
contexts:
  - name: tenantd-test
    context: { cluster: tenantd-test, user: admin }
current-context: tenantd-test
KC
chmod 600 "$dir/kubeconfig"

for _ in $(seq 1 600); do
  api_ready && break
  alive kube-apiserver || { log "kube-apiserver exited:"; tail -30 "$dir/logs/kube-apiserver.log" >&2; exit 1; }
  sleep 0.1
done
api_ready || { log "kube-apiserver did not become ready in 60 s"; tail -30 "$dir/logs/kube-apiserver.log" >&2; exit 1; }

start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig "$dir/kubeconfig" --leader-elect=false --port 0 --secure-port 0 \
  --service-account-private-key-file "$dir/sa.key" --use-service-account-credentials=false \
  --root-ca-file "$dir/certs/apiserver.crt" \
  --controllers "${TENANTD_KUBE_CONTROLLERS:-namespace,garbagecollector,persistentvolume-binder,pv-protection,pvc-protection,resourcequota,root-ca-cert-publisher,serviceaccount,serviceaccount-token}" \
  --concurrent-namespace-syncs 10 --namespace-sync-period 30s --pvclaimbinder-sync-period 1s \
  --logtostderr -v 0
sleep 0.5
alive kube-controller-manager || { log "kube-controller-manager exited:"; tail -30 "$dir/logs/kube-controller-manager.log" >&2; exit 1; }
log "ready: https://127.0.0.1:$api_port (kubeconfig $dir/kubeconfig)"
