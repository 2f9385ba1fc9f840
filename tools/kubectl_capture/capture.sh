#!/usr/bin/env bash
# Re-captures the kubectl protobuf fixtures of api/src/protobuf/fixtures: for each command,
# the body `kubectl create …` POSTs (kubectl-create-NAME.pb) and the JSON that
# `kubectl create … --dry-run=client -o json` prints for the same object (kubectl-create-NAME.json).
# Everything stays on loopback: kubectl talks to tools/kubectl_capture/catcher.py.
# Usage: tools/kubectl_capture/capture.sh [PORT]   (from the workspace root)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fixtures=$here/../../api/src/protobuf/fixtures
port=${1:-18777}
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/out" "$work/home"
python3 "$here/catcher.py" "$port" "$work/out" &
server=$!
cat > "$work/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:$port"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]
current-context: x
KC
export HOME=$work/home KUBECONFIG=$work/kubeconfig
printf '\x00\x01\x02\xff\xfebinary' > "$work/blob"
for _ in $(seq 50); do curl -s "http://127.0.0.1:$port/version" >/dev/null && break; sleep 0.1; done

capture() { # NAME kubectl-args...
    local name=$1; shift
    rm -f "$work"/out/body-*
    kubectl "$@" >/dev/null
    mv "$work"/out/body-*.pb "$fixtures/kubectl-create-$name.pb"
    # the same command, client-side only, with the flags before any `--`
    local args=() a seen=
    for a in "$@"; do
        if [[ $a == -- && -z $seen ]]; then args+=(--dry-run=client -o json); seen=1; fi
        args+=("$a")
    done
    [[ -n $seen ]] || args+=(--dry-run=client -o json)
    kubectl "${args[@]}" > "$fixtures/kubectl-create-$name.json"
}
capture configmap create configmap x --from-literal=a=b
capture configmap-bin create configmap bin --from-file=blob="$work/blob" --from-literal=text=hello
capture secret create secret generic s --from-literal=user=admin --from-literal=pass=s3cr3t
capture secret-dockercfg create secret docker-registry reg --docker-server=r.example --docker-username=u --docker-password=p
capture namespace create namespace team-a
capture deployment create deployment web --image=nginx:1.27 --replicas=3 --port=80
capture deployment-zero create deployment zero --image=busybox --replicas=0 -- sleep 3600
capture service create service clusterip svc --tcp=80:8080 --tcp=443:8443
capture service-nodeport create service nodeport np --tcp=80:8080 --node-port=30080
capture service-loadbalancer create service loadbalancer lb --tcp=443:https
capture service-externalname create service externalname ext --external-name=db.example.com
capture deployment-multi create deployment multi --image=nginx --image=busybox
capture ingress create ingress web --rule="a.example.com/*=web:80" --rule="b.example.com/api=api:http,tls=b-tls" --default-backend=fallback:8080
capture ingress-class create ingress plain --class=paddock --rule="/exact=web:80"
cat "$work/out/log"
