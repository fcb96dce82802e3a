#!/usr/bin/env bash
# Stops the control plane test/cluster/up.sh DIR started, by pid, and drops its etcd data.
set -uo pipefail
dir="${1:?usage: test/cluster/down.sh DIR}"
[ -d "$dir" ] || exit 0
for name in kube-controller-manager kube-apiserver etcd; do
  f="$dir/$name.pid"
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$f"
done
rm -rf "$dir/etcd-data" "$dir/apiserver.port" "$dir/etcd.port"
exit 0
