//! Manifests shared by the end-to-end tests: one object of every served resource.

/// One object of every resource paddock serves, in namespace `default` (plus a namespace
/// `team-a` with a pod of its own for `-A`).
pub const EVERYTHING: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
apiVersion: v1
kind: Pod
metadata: {name: alpha, labels: {app: web, tier: front}}
spec:
  containers:
  - {name: main, image: example/web:1.0, command: ["/bin/sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: beta, labels: {app: db}}
spec:
  containers:
  - {name: main, image: example/db:1.0, command: ["/bin/sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: gamma, namespace: team-a, labels: {app: web}}
spec:
  containers:
  - {name: main, image: example/web:1.0, command: ["/bin/sleep", "3600"]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: 8080}
---
apiVersion: v1
kind: Endpoints
metadata: {name: manual}
subsets:
- addresses: [{ip: 10.244.0.9}]
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Node
metadata: {name: node-1, labels: {kubernetes.io/hostname: node-1}}
spec: {}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
type: Opaque
stringData: {password: hunter2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, labels: {app: api}}
spec:
  replicas: 0
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - {name: main, image: example/api:1.0, command: ["/bin/sleep", "3600"]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: worker, labels: {app: worker}}
spec:
  replicas: 0
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers:
      - {name: main, image: example/worker:1.0, command: ["/bin/sleep", "3600"]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: manual-abc, labels: {kubernetes.io/service-name: manual}}
addressType: IPv4
endpoints:
- addresses: [10.244.0.9]
  conditions: {ready: true}
ports:
- {port: 8080, protocol: TCP, name: ""}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: node-1, namespace: kube-node-lease}
spec: {holderIdentity: node-1, leaseDurationSeconds: 40}
---
apiVersion: v1
kind: Event
metadata: {name: alpha.1}
involvedObject: {kind: Pod, name: alpha, namespace: default, apiVersion: v1}
reason: Testing
message: hello from the test
type: Normal
source: {component: e2e}
---
apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata: {name: e2e-request}
spec:
  # `openssl req -new -newkey ec -subj /CN=e2e`, for a signer no controller serves.
  request: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlISU1IQUNBUUF3RGpFTU1Bb0dBMVVFQXd3RFpUSmxNRmt3RXdZSEtvWkl6ajBDQVFZSUtvWkl6ajBEQVFjRApRZ0FFVktYc3h3eTVROWlKbzdTUUJYY2Q2SG5TOTNkcXpIWXh5S2xlNjluNy9qamp6b0k0dnlic2YySUxBaEswCjdmYlFuTys2a3AwVDJsYnU2TGVCaTJpV0xxQUFNQW9HQ0NxR1NNNDlCQU1DQTBnQU1FVUNJRFZtWHoyVitqOTgKdkNHWmVzYUNxQ3JRYSt6UmF6alBCZFZzN21jc0FwRWFBaUVBNzFna29FS21JZHdYSGl6UG9Jd0tYUFBsL3NNTAp1bTY5NFZwanJNdXVzUnM9Ci0tLS0tRU5EIENFUlRJRklDQVRFIFJFUVVFU1QtLS0tLQo=
  signerName: example.com/e2e
  usages: [digital signature, client auth]
"#;

/// The resource names `kubectl get` is exercised with, one per served resource.
pub const RESOURCES: &[&str] = &[
    "namespaces",
    "pods",
    "services",
    "endpoints",
    "nodes",
    "events",
    "configmaps",
    "secrets",
    "deployments",
    "replicasets",
    "endpointslices",
    "leases",
    "certificatesigningrequests",
];
