"""A loopback fake API server that records kubectl's request bodies (tools/kubectl_capture).

Serves /version (1.32, so the kubectl dispatcher runs its built-in kubectl 1.32), legacy discovery
for the core and apps groups, a canned Deployment `web`, and answers every write with 201. Each
protobuf body is saved as OUT/body-N.pb, others as OUT/body-N.json; OUT/log lists the requests.
Usage: catcher.py PORT OUT
"""
import http.server, json, sys, os, itertools
OUT = sys.argv[2]
counter = itertools.count()
def res(name, kind, ns=True, verbs=("create","get","list","delete","update","patch")):
    return {"name": name, "singularName": "", "namespaced": ns, "kind": kind, "verbs": list(verbs)}
CORE = {"kind":"APIResourceList","apiVersion":"v1","groupVersion":"v1","resources":[
    res("pods","Pod"),res("services","Service"),res("configmaps","ConfigMap"),res("secrets","Secret"),
    res("namespaces","Namespace",False),res("endpoints","Endpoints"),res("nodes","Node",False),res("events","Event")]}
APPS = {"kind":"APIResourceList","apiVersion":"v1","groupVersion":"apps/v1","resources":[
    res("deployments","Deployment"),res("replicasets","ReplicaSet"),res("deployments/scale","Scale")]}
GROUPS = {"kind":"APIGroupList","apiVersion":"v1","groups":[{"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],"preferredVersion":{"groupVersion":"apps/v1","version":"v1"}}]}
DEPLOY = {"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"default","uid":"u1","resourceVersion":"5"},
  "spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx","ports":[{"containerPort":80}]}]}}}}
class H(http.server.BaseHTTPRequestHandler):
    def send(self, obj, code=200):
        b = json.dumps(obj).encode()
        self.send_response(code); self.send_header("Content-Type","application/json"); self.send_header("Content-Length",str(len(b))); self.end_headers(); self.wfile.write(b)
    def do_GET(self):
        p = self.path.split("?")[0]
        if p == "/version": return self.send({"major":"1","minor":"32","gitVersion":"v1.32.4","platform":"linux/amd64"})
        if p == "/api": return self.send({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]})
        if p == "/apis": return self.send(GROUPS)
        if p == "/api/v1": return self.send(CORE)
        if p == "/apis/apps/v1": return self.send(APPS)
        if p.endswith("/deployments/web"): return self.send(DEPLOY)
        self.send({"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"nf"},404)
    def body(self):
        n = int(self.headers.get("Content-Length") or 0); return self.rfile.read(n)
    def do_POST(self):
        b = self.body()
        ext = "pb" if b[:4] == b"k8s\0" else "json"
        with open(os.path.join(OUT, f"body-{next(counter)}.{ext}"), "wb") as f: f.write(b)
        with open(os.path.join(OUT,"log"),"a") as f: f.write(f"{self.command} {self.path} {self.headers.get('Content-Type')} {len(b)}\n")
        self.send({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}, 201)
    do_PUT = do_POST
    def do_DELETE(self): self.do_POST()
    def do_PATCH(self): self.do_POST()
    def log_message(self,*a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
