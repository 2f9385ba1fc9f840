"""The official Python client against paddock: list, create, read, patch, delete and watch
pods and deployments. Exits non-zero (with a traceback) on the first failed check."""

import sys
import threading

from kubernetes import client, config, watch

config.load_kube_config()
core = client.CoreV1Api()
apps = client.AppsV1Api()
NS = "default"

pod = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "py-pod", "labels": {"app": "py"}},
    "spec": {"containers": [{"name": "main", "image": "x", "command": ["/bin/sleep", "60"]}]},
}
dep = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "py-dep"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "pyd"}},
        "template": {
            "metadata": {"labels": {"app": "pyd"}},
            "spec": {"containers": [{"name": "main", "image": "x", "command": ["/bin/sleep", "60"]}]},
        },
    },
}

# Lists start empty and are well-formed.
assert core.list_namespaced_pod(NS).items == []
assert apps.list_namespaced_deployment(NS).items == []
assert isinstance(core.list_pod_for_all_namespaces().items, list)

# Watch in the background from the start (no resourceVersion: initial ADDED replay, then changes).
events = []
def watch_pods():
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, NS, label_selector="app=py", timeout_seconds=5):
        events.append((ev["type"], ev["object"].metadata.name))
        if ev["type"] == "DELETED":
            w.stop()
t = threading.Thread(target=watch_pods)
t.start()

created = core.create_namespaced_pod(NS, pod)
assert created.metadata.uid and created.metadata.resource_version
read = core.read_namespaced_pod("py-pod", NS)
assert read.spec.containers[0].name == "main"
assert read.spec.restart_policy == "Always"  # server-side defaulting
assert read.spec.service_account_name == "default"  # admission

patched = core.patch_namespaced_pod("py-pod", NS, {"metadata": {"labels": {"extra": "yes"}}})
assert patched.metadata.labels == {"app": "py", "extra": "yes"}
listed = core.list_namespaced_pod(NS, label_selector="extra=yes")
assert [p.metadata.name for p in listed.items] == ["py-pod"]

d = apps.create_namespaced_deployment(NS, dep)
assert d.spec.strategy.rolling_update.max_surge == "25%"
d = apps.patch_namespaced_deployment("py-dep", NS, {"spec": {"replicas": 3}})
assert d.spec.replicas == 3
s = apps.patch_namespaced_deployment_scale("py-dep", NS, {"spec": {"replicas": 2}})
assert s.spec.replicas == 2
assert apps.read_namespaced_deployment("py-dep", NS).spec.replicas == 2
dw = watch.Watch()
# The deployment controller keeps updating status, so later MODIFIED events may follow.
seen = [(ev["type"], ev["object"].metadata.name) for ev in dw.stream(apps.list_namespaced_deployment, NS, timeout_seconds=1)]
assert seen[0] == ("ADDED", "py-dep") and all(n == "py-dep" for _, n in seen), seen

try:
    core.create_namespaced_pod(NS, pod)
    raise AssertionError("second create must fail")
except client.exceptions.ApiException as e:
    assert e.status == 409, e.status

core.delete_namespaced_pod("py-pod", NS)
apps.delete_namespaced_deployment("py-dep", NS)
t.join(timeout=20)
assert not t.is_alive(), "watch did not end"
types = [e[0] for e in events if e[1] == "py-pod"]
assert types[0] == "ADDED" and types[-1] == "DELETED" and "MODIFIED" in types, events

try:
    core.read_namespaced_pod("py-pod", NS)
    raise AssertionError("pod must be gone")
except client.exceptions.ApiException as e:
    assert e.status == 404

print("python client: all checks passed")
sys.exit(0)
