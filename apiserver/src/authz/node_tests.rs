//! The Node authorizer: its graph alone (pods bound, moved and deleted, PVC -> PV -> Secret
//! chains, the Ingress TLS edge, memory following the objects), and the `Node,RBAC` chain
//! over a real in-memory registry whose graph follows the store (decisions, field-selected
//! lists, the 403 text, the legacy grants taken back).

use serde_json::{Value, json};

use super::node_graph::{NodeGraph, Vertex};
use super::*;
use crate::params::Query;
use crate::registry::{Registry, WriteOptions};

fn node_user(name: &str) -> UserInfo {
    UserInfo {
        name: format!("system:node:{name}"),
        uid: String::new(),
        groups: vec!["system:nodes".into(), "system:authenticated".into()],
        extra: Default::default(),
    }
}

fn pod(ns: &str, name: &str, node: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["containers"]
        .as_array()
        .is_none()
        .then(|| spec["containers"] = json!([{"name": "c", "image": "i"}]));
    if !node.is_empty() {
        spec["nodeName"] = json!(node);
    }
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

#[test]
fn pods_bind_their_objects_to_their_node_until_moved_or_deleted() {
    let g = NodeGraph::default();
    let spec = json!({
        "serviceAccountName": "sa",
        "imagePullSecrets": [{"name": "pull"}],
        "initContainers": [{"name": "i", "image": "i",
            "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "init-env", "key": "k"}}}]}],
        "containers": [{"name": "c", "image": "i",
            "envFrom": [{"configMapRef": {"name": "cm-env"}}, {"secretRef": {"name": "s-env"}}]}],
        "ephemeralContainers": [{"name": "e", "image": "i",
            "env": [{"name": "B", "valueFrom": {"configMapKeyRef": {"name": "eph-cm", "key": "k"}}}]}],
        "volumes": [
            {"name": "v1", "secret": {"secretName": "vol"}},
            {"name": "v2", "configMap": {"name": "cm-vol"}},
            {"name": "v3", "projected": {"sources": [
                {"secret": {"name": "proj"}}, {"configMap": {"name": "cm-proj"}}]}},
            {"name": "v4", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi"}}},
            {"name": "v5", "persistentVolumeClaim": {"claimName": "claim"}},
            {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
        ],
    });
    g.apply_for_test("pods", false, &pod("ns", "p", "a", spec.clone()));
    for s in ["pull", "init-env", "s-env", "vol", "proj", "csi"] {
        assert!(g.has_path("a", Vertex::Secret, "ns", s), "{s}");
        assert!(!g.has_path("b", Vertex::Secret, "ns", s), "{s}");
        assert!(!g.has_path("a", Vertex::Secret, "other", s), "{s}");
    }
    for c in ["cm-env", "eph-cm", "cm-vol", "cm-proj"] {
        assert!(g.has_path("a", Vertex::ConfigMap, "ns", c), "{c}");
    }
    assert!(!g.has_path("a", Vertex::Secret, "ns", "cm-vol"));
    assert!(g.has_path("a", Vertex::Pvc, "ns", "claim"));
    assert!(g.has_path("a", Vertex::Pvc, "ns", "p-scratch"));
    assert!(g.has_path("a", Vertex::ServiceAccount, "ns", "sa"));
    assert!(g.has_path("a", Vertex::Pod, "ns", "p"));
    assert!(!g.has_path("a", Vertex::Secret, "ns", "unrelated"));

    // A second pod on the same node shares "vol": deleting the first keeps it.
    g.apply_for_test(
        "pods",
        false,
        &pod(
            "ns",
            "q",
            "a",
            json!({"volumes": [{"name": "v", "secret": {"secretName": "vol"}}]}),
        ),
    );
    g.apply_for_test("pods", true, &pod("ns", "p", "a", spec.clone()));
    assert!(g.has_path("a", Vertex::Secret, "ns", "vol"));
    assert!(!g.has_path("a", Vertex::Secret, "ns", "pull"));
    assert!(!g.has_path("a", Vertex::ServiceAccount, "ns", "sa"));

    // Moved to node b (a delete and re-create with the same name): a loses it, b gains it.
    g.apply_for_test(
        "pods",
        false,
        &pod(
            "ns",
            "q",
            "b",
            json!({"volumes": [
        {"name": "v", "secret": {"secretName": "vol"}}]}),
        ),
    );
    assert!(!g.has_path("a", Vertex::Secret, "ns", "vol"));
    assert!(g.has_path("b", Vertex::Secret, "ns", "vol"));

    // Unbound pods relate to no node.
    g.apply_for_test(
        "pods",
        false,
        &pod(
            "ns",
            "q",
            "",
            json!({"volumes": [
        {"name": "v", "secret": {"secretName": "vol"}}]}),
        ),
    );
    assert!(!g.has_path("b", Vertex::Secret, "ns", "vol"));
    assert_eq!(g.sizes(), (0, 0, 0, 0));
}

#[test]
fn persistent_volumes_chain_claims_and_their_secrets() {
    let g = NodeGraph::default();
    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
        "spec": {"claimRef": {"namespace": "ns", "name": "claim"},
                 "csi": {"driver": "d", "volumeHandle": "h",
                         "nodeStageSecretRef": {"name": "stage", "namespace": "secrets"}},
                 "cephfs": {"monitors": ["m"], "secretRef": {"name": "ceph"}}}});
    g.apply_for_test("persistentvolumes", false, &pv);
    // No pod uses the claim yet.
    assert!(!g.has_path("a", Vertex::Pv, "", "pv1"));
    assert!(!g.has_path("a", Vertex::Secret, "secrets", "stage"));
    g.apply_for_test(
        "pods",
        false,
        &pod(
            "ns",
            "p",
            "a",
            json!({"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "claim"}}]}),
        ),
    );
    assert!(g.has_path("a", Vertex::Pvc, "ns", "claim"));
    assert!(g.has_path("a", Vertex::Pv, "", "pv1"));
    assert!(g.has_path("a", Vertex::Secret, "secrets", "stage"));
    // A reference without a namespace is in the claim's.
    assert!(g.has_path("a", Vertex::Secret, "ns", "ceph"));
    assert!(!g.has_path("b", Vertex::Pv, "", "pv1"));
    assert!(!g.has_path("b", Vertex::Secret, "secrets", "stage"));
    // The PV released from the claim: the chain is gone.
    let mut released = pv.clone();
    released["spec"].as_object_mut().unwrap().remove("claimRef");
    g.apply_for_test("persistentvolumes", false, &released);
    assert!(!g.has_path("a", Vertex::Pv, "", "pv1"));
    assert!(!g.has_path("a", Vertex::Secret, "secrets", "stage"));
    g.apply_for_test("persistentvolumes", true, &released);
    g.apply_for_test("pods", true, &pod("ns", "p", "a", json!({})));
    assert_eq!(g.sizes(), (0, 0, 0, 0));
}

#[test]
fn ingress_tls_secrets_are_readable_by_every_node_while_named() {
    let g = NodeGraph::default();
    let ing = |secrets: &[&str]| {
        let tls: Vec<Value> = secrets
            .iter()
            .map(|s| json!({"hosts": ["h"], "secretName": s}))
            .collect();
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "web", "namespace": "ns"}, "spec": {"tls": tls}})
    };
    g.apply_for_test("networking.k8s.io/ingresses", false, &ing(&["cert"]));
    assert!(g.has_path("a", Vertex::Secret, "ns", "cert"));
    assert!(g.has_path("z", Vertex::Secret, "ns", "cert"));
    assert!(!g.has_path("a", Vertex::Secret, "other", "cert"));
    // Only Secrets: not a ConfigMap of the same name.
    assert!(!g.has_path("a", Vertex::ConfigMap, "ns", "cert"));
    g.apply_for_test("networking.k8s.io/ingresses", false, &ing(&["cert2"]));
    assert!(!g.has_path("a", Vertex::Secret, "ns", "cert"));
    assert!(g.has_path("a", Vertex::Secret, "ns", "cert2"));
    g.apply_for_test("networking.k8s.io/ingresses", true, &ing(&["cert2"]));
    assert!(!g.has_path("a", Vertex::Secret, "ns", "cert2"));
    assert_eq!(g.sizes(), (0, 0, 0, 0));
}

async fn registry() -> (Registry, tokio::sync::watch::Sender<bool>) {
    let r = super::tests::registry().await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    r.start_node_graph(rx);
    for ns in ["ns", "other"] {
        let n = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        r.create(
            crate::strategy::namespaces(),
            "",
            n,
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    }
    (r, tx)
}

async fn create(r: &Registry, plural: &str, ns: &str, obj: Value) {
    let info = api::registry::lookup("", "v1", plural).unwrap();
    r.create(info, ns, obj, &WriteOptions::default())
        .await
        .unwrap();
}

fn attrs(method: http::Method, path_query: &str) -> Attributes {
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    Attributes::from_request(&method, path, &Query::parse(Some(query)))
}

async fn check(r: &Registry, node: &str, method: http::Method, path: &str) -> Result<(), String> {
    let u = node_user(node);
    let a = attrs(method, path);
    let d = decide(r, &u, &a).await;
    if d.allowed {
        Ok(())
    } else {
        Err(forbidden(&u, &a, &d.reason).message)
    }
}

#[tokio::test]
async fn nodes_read_only_what_their_pods_use_with_upstream_refusals() {
    let (r, _stop) = registry().await;
    for name in ["s", "elsewhere", "nobody"] {
        let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}});
        create(&r, "secrets", "ns", s).await;
    }
    // Checked right after the create: the graph is never behind a committed write.
    create(
        &r,
        "pods",
        "ns",
        pod(
            "ns",
            "p",
            "a",
            json!({"volumes": [{"name": "v", "secret": {"secretName": "s"}}]}),
        ),
    )
    .await;
    use http::Method;
    assert_eq!(
        check(&r, "a", Method::GET, "/api/v1/namespaces/ns/secrets/s").await,
        Ok(())
    );
    create(
        &r,
        "pods",
        "ns",
        pod(
            "ns",
            "q",
            "b",
            json!({"volumes": [{"name": "v", "secret": {"secretName": "elsewhere"}}]}),
        ),
    )
    .await;
    let no = |name: &str| {
        format!(
            r#"secrets "{name}" is forbidden: User "system:node:a" cannot get resource "secrets" in API group "" in the namespace "ns": no relationship found between node 'a' and this object"#
        )
    };
    assert_eq!(
        check(
            &r,
            "a",
            Method::GET,
            "/api/v1/namespaces/ns/secrets/elsewhere"
        )
        .await,
        Err(no("elsewhere"))
    );
    assert_eq!(
        check(&r, "a", Method::GET, "/api/v1/namespaces/ns/secrets/nobody").await,
        Err(no("nobody"))
    );
    // The same name in another namespace is another object.
    assert!(
        check(&r, "a", Method::GET, "/api/v1/namespaces/other/secrets/s")
            .await
            .is_err()
    );
    // One object by field selector (the kubelet's watch-based secret manager).
    assert_eq!(
        check(
            &r,
            "a",
            Method::GET,
            "/api/v1/namespaces/ns/secrets?fieldSelector=metadata.name%3Ds&watch=true"
        )
        .await,
        Ok(())
    );
    assert_eq!(
        check(
            &r,
            "a",
            Method::GET,
            "/api/v1/namespaces/ns/secrets?fieldSelector=metadata.name=s"
        )
        .await,
        Ok(())
    );
    // Every Secret: no name.
    assert_eq!(
        check(&r, "a", Method::GET, "/api/v1/namespaces/ns/secrets").await,
        Err(r#"secrets is forbidden: User "system:node:a" cannot list resource "secrets" in API group "" in the namespace "ns": No Object name found"#.into())
    );
    assert_eq!(
        check(&r, "a", Method::GET, "/api/v1/secrets").await,
        Err(r#"secrets is forbidden: User "system:node:a" cannot list resource "secrets" in API group "" at the cluster scope: can only read namespaced object of this type"#.into())
    );
    assert_eq!(
        check(&r, "a", Method::DELETE, "/api/v1/namespaces/ns/secrets/s").await,
        Err(r#"secrets "s" is forbidden: User "system:node:a" cannot delete resource "secrets" in API group "" in the namespace "ns": can only read resources of this type"#.into())
    );
    // The pod deleted: its Secret goes with it.
    let pods = api::registry::lookup("", "v1", "pods").unwrap();
    r.delete(
        pods,
        "ns",
        "p",
        &crate::registry::DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        check(&r, "a", Method::GET, "/api/v1/namespaces/ns/secrets/s").await,
        Err(no("s"))
    );
    // What the graph does not subdivide follows the system:node rules ...
    assert_eq!(
        check(&r, "a", Method::GET, "/api/v1/namespaces/ns/pods").await,
        Ok(())
    );
    assert_eq!(
        check(
            &r,
            "a",
            Method::POST,
            "/apis/certificates.k8s.io/v1/certificatesigningrequests"
        )
        .await,
        Ok(())
    );
    // ... and paddock:node-components (its proxy, DNS and Ingress controller).
    assert_eq!(
        check(
            &r,
            "a",
            Method::GET,
            "/apis/discovery.k8s.io/v1/endpointslices"
        )
        .await,
        Ok(())
    );
    // Nothing else.
    assert_eq!(
        check(&r, "a", Method::GET, "/apis/apps/v1/deployments").await,
        Err(r#"deployments.apps is forbidden: User "system:node:a" cannot list resource "deployments" in API group "apps" at the cluster scope"#.into())
    );
    // Leases: its own only.
    assert_eq!(
        check(
            &r,
            "a",
            Method::PUT,
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/a"
        )
        .await,
        Ok(())
    );
    assert_eq!(
        check(&r, "a", Method::PUT, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/b").await,
        Err(r#"leases.coordination.k8s.io "b" is forbidden: User "system:node:a" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": can only access node lease with the same name as the requesting node"#.into())
    );
}

#[tokio::test]
async fn tokens_volumes_and_ingress_certificates_follow_the_graph() {
    let (r, _stop) = registry().await;
    use http::Method;
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "runner"}});
    create(&r, "serviceaccounts", "ns", sa).await;
    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": "/tmp/x"},
                 "claimRef": {"namespace": "ns", "name": "claim"}}});
    create(&r, "persistentvolumes", "", pv).await;
    create(
        &r,
        "pods",
        "ns",
        pod(
            "ns",
            "p",
            "a",
            json!({"serviceAccountName": "runner",
                   "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "claim"}}]}),
        ),
    )
    .await;
    assert_eq!(
        check(
            &r,
            "a",
            Method::POST,
            "/api/v1/namespaces/ns/serviceaccounts/runner/token"
        )
        .await,
        Ok(())
    );
    assert_eq!(
        check(&r, "a", Method::POST, "/api/v1/namespaces/ns/serviceaccounts/default/token").await,
        Err(r#"serviceaccounts "default" is forbidden: User "system:node:a" cannot create resource "serviceaccounts/token" in API group "" in the namespace "ns": no relationship found between node 'a' and this object"#.into())
    );
    assert!(
        check(
            &r,
            "b",
            Method::POST,
            "/api/v1/namespaces/ns/serviceaccounts/runner/token"
        )
        .await
        .is_err()
    );
    assert_eq!(
        check(
            &r,
            "a",
            Method::GET,
            "/api/v1/namespaces/ns/persistentvolumeclaims/claim"
        )
        .await,
        Ok(())
    );
    assert_eq!(
        check(&r, "a", Method::GET, "/api/v1/persistentvolumes/pv1").await,
        Ok(())
    );
    // Node b is not related; it still reads PVs through paddock:node-components (its
    // local-path cleaner), as RBAC after the Node authorizer.
    let pv_get = attrs(Method::GET, "/api/v1/persistentvolumes/pv1");
    assert_eq!(
        node_authorizer::authorize(r.node_graph(), "system:node:b", "b", &pv_get),
        node_authorizer::NodeDecision::NoOpinion {
            reason: "no relationship found between node 'b' and this object".into()
        }
    );
    assert_eq!(
        node_authorizer::authorize(r.node_graph(), "system:node:a", "a", &pv_get),
        node_authorizer::NodeDecision::Allow
    );
    let ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "ns"},
        "spec": {"tls": [{"hosts": ["h.example"], "secretName": "web-tls"}],
                 "defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}});
    let ingresses = api::registry::lookup("networking.k8s.io", "v1", "ingresses").unwrap();
    r.create(ingresses, "ns", ing, &WriteOptions::default())
        .await
        .unwrap();
    for node in ["a", "b"] {
        assert_eq!(
            check(&r, node, Method::GET, "/api/v1/namespaces/ns/secrets?fieldSelector=metadata.name%3Dweb-tls,type%3Dkubernetes.io/tls").await,
            Ok(())
        );
    }
    assert!(
        check(
            &r,
            "a",
            Method::GET,
            "/api/v1/namespaces/other/secrets/web-tls"
        )
        .await
        .is_err()
    );
    // Access reviews ask the same chain; a node's rules cannot be enumerated.
    let d = decide(
        &r,
        &node_user("b"),
        &attrs(Method::GET, "/api/v1/namespaces/ns/secrets/web-tls"),
    )
    .await;
    assert!(d.allowed);
}

#[tokio::test]
async fn legacy_node_grants_are_taken_back_at_start() {
    let r = Registry::new(store::Store::memory());
    crate::bootstrap(&r).await.unwrap();
    let crb =
        api::registry::lookup(api::registry::RBAC_GROUP, "v1", "clusterrolebindings").unwrap();
    let cr = api::registry::lookup(api::registry::RBAC_GROUP, "v1", "clusterroles").unwrap();
    let ann = json!({"rbac.authorization.kubernetes.io/autoupdate": "true"});
    r.create(crb, "", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "system:node", "annotations": ann},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}]}),
        &WriteOptions::default()).await.unwrap();
    r.create(cr, "", json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "paddock:node-components", "annotations": ann},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]}),
        &WriteOptions::default()).await.unwrap();
    bootstrap::ensure(&r).await.unwrap();
    let b = r.get(crb, "", "system:node").unwrap();
    assert_eq!(b["subjects"], json!([]));
    let role = r.get(cr, "", "paddock:node-components").unwrap();
    assert!(!role["rules"].to_string().contains("secrets"), "{role}");
    let a = Attributes {
        verb: "list".into(),
        resource_request: true,
        api_version: "v1".into(),
        resource: "secrets".into(),
        namespace: "ns".into(),
        ..Attributes::default()
    };
    assert!(!decide(&r, &node_user("a"), &a).await.allowed);
}

#[tokio::test]
async fn a_nameless_node_is_refused_and_a_nodes_rules_are_incomplete() {
    let (r, _stop) = registry().await;
    let a = attrs(http::Method::GET, "/api/v1/namespaces/ns/secrets/s");
    assert_eq!(
        node_authorizer::authorize(r.node_graph(), "system:node:", "", &a),
        node_authorizer::NodeDecision::NoOpinion {
            reason: r#"unknown node for user "system:node:""#.into()
        }
    );
    // Upstream's union rule resolver: the Node authorizer cannot list a node's rules.
    let status = super::review::rules_status(r.rbac(), &node_user("a"), "ns");
    assert_eq!(status["incomplete"], true);
    assert_eq!(
        status["evaluationError"],
        "node authorizer does not support user rule resolution"
    );
    // Not a node: complete.
    let jane = UserInfo {
        name: "jane".into(),
        uid: String::new(),
        groups: vec!["system:authenticated".into()],
        extra: Default::default(),
    };
    assert_eq!(
        super::review::rules_status(r.rbac(), &jane, "ns")["incomplete"],
        false
    );
}

/// A graph whose watches keep falling behind (a one-event buffer, writes in bursts on a
/// single-threaded runtime the populator cannot run on meanwhile) lists again and still
/// answers exactly what the store holds.
#[tokio::test]
async fn a_graph_that_fell_behind_lists_again_and_stays_exact() {
    let store = store::Store::memory_with(store::StoreConfig {
        watch_buffer: 1,
        ..Default::default()
    });
    let r = Registry::new(store);
    crate::bootstrap(&r).await.unwrap();
    bootstrap::ensure(&r).await.unwrap();
    let (_stop, rx) = tokio::sync::watch::channel(false);
    r.start_node_graph(rx);
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}});
    r.create(
        crate::strategy::namespaces(),
        "",
        ns,
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    for i in 0..20 {
        let node = if i % 2 == 0 { "a" } else { "b" };
        let volumes =
            json!({"volumes": [{"name": "v", "secret": {"secretName": format!("s{i}")}}]});
        create(&r, "pods", "ns", pod("ns", &format!("p{i}"), node, volumes)).await;
    }
    use http::Method;
    // The first check waits for the graph; by then it has listed the pods again.
    assert_eq!(
        check(&r, "a", Method::GET, "/api/v1/namespaces/ns/secrets/s0").await,
        Ok(())
    );
    assert!(r.node_graph().lists() > 3, "{}", r.node_graph().lists());
    for i in 0..20 {
        let (mine, theirs) = if i % 2 == 0 { ("a", "b") } else { ("b", "a") };
        let path = format!("/api/v1/namespaces/ns/secrets/s{i}");
        assert_eq!(check(&r, mine, Method::GET, &path).await, Ok(()), "s{i}");
        assert!(check(&r, theirs, Method::GET, &path).await.is_err(), "s{i}");
    }
}

/// `AuthorizeNodeWithSelectors`: a node reads its own Node only, and lists or watches pods
/// only with its `spec.nodeName` field selector (or one pod bound to it by name), with
/// upstream's reasons; what it writes is left to NodeRestriction.
#[tokio::test]
async fn nodes_read_their_own_node_and_list_pods_by_their_node_name_only() {
    use http::Method;
    let (r, _stop) = registry().await;
    create(&r, "pods", "ns", pod("ns", "p", "a", json!({}))).await;
    // Through the chain first: it brings the graph up to date.
    assert_eq!(
        check(&r, "a", Method::GET, "/api/v1/namespaces/ns/pods/p").await,
        Ok(())
    );
    let decide_as = |node: &str, method: Method, path: &str| {
        node_authorizer::authorize(
            r.node_graph(),
            &format!("system:node:{node}"),
            node,
            &attrs(method, path),
        )
    };
    let allow = node_authorizer::NodeDecision::Allow;
    let no = |reason: &str| node_authorizer::NodeDecision::NoOpinion {
        reason: reason.into(),
    };
    let pods_only = "can only list/watch pods with spec.nodeName field selector";
    for (node, method, path, want) in [
        (
            "a",
            Method::GET,
            "/api/v1/pods?fieldSelector=spec.nodeName%3Da",
            allow.clone(),
        ),
        (
            "a",
            Method::GET,
            "/api/v1/pods?fieldSelector=spec.nodeName%3D%3Da%2Cstatus.phase!%3DFailed&watch=1",
            allow.clone(),
        ),
        ("a", Method::GET, "/api/v1/pods", no(pods_only)),
        (
            "a",
            Method::GET,
            "/api/v1/pods?fieldSelector=spec.nodeName!%3Da",
            no(pods_only),
        ),
        (
            "b",
            Method::GET,
            "/api/v1/pods?fieldSelector=spec.nodeName%3Da",
            no(pods_only),
        ),
        (
            "a",
            Method::GET,
            "/api/v1/namespaces/ns/pods?labelSelector=x%3Dy",
            no(pods_only),
        ),
        // One pod by name: the graph decides.
        (
            "a",
            Method::GET,
            "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dp&watch=true",
            allow.clone(),
        ),
        (
            "b",
            Method::GET,
            "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dp",
            no("no relationship found between node 'b' and this object"),
        ),
        (
            "a",
            Method::GET,
            "/api/v1/namespaces/ns/pods/p",
            allow.clone(),
        ),
        (
            "b",
            Method::GET,
            "/api/v1/namespaces/ns/pods/p",
            no("no relationship found between node 'b' and this object"),
        ),
        (
            "b",
            Method::POST,
            "/api/v1/namespaces/ns/pods",
            allow.clone(),
        ),
        (
            "b",
            Method::DELETE,
            "/api/v1/namespaces/ns/pods/p",
            allow.clone(),
        ),
        (
            "b",
            Method::PATCH,
            "/api/v1/namespaces/ns/pods/p/status",
            allow.clone(),
        ),
        (
            "b",
            Method::POST,
            "/api/v1/namespaces/ns/pods/p/eviction",
            allow.clone(),
        ),
        ("a", Method::PATCH, "/api/v1/namespaces/ns/pods/p", no("")),
        ("a", Method::GET, "/api/v1/namespaces/ns/pods/p/log", no("")),
        // Nodes: its own by name only.
        ("a", Method::GET, "/api/v1/nodes/a", allow.clone()),
        (
            "a",
            Method::GET,
            "/api/v1/nodes?fieldSelector=metadata.name%3Da",
            allow.clone(),
        ),
        (
            "a",
            Method::GET,
            "/api/v1/nodes?fieldSelector=metadata.name%3Da&watch=true",
            allow.clone(),
        ),
        (
            "a",
            Method::GET,
            "/api/v1/nodes/b",
            no("node 'a' cannot read 'b', only its own Node object"),
        ),
        (
            "a",
            Method::GET,
            "/api/v1/nodes",
            no("node 'a' cannot read all nodes, only its own Node object"),
        ),
        (
            "a",
            Method::GET,
            "/api/v1/nodes?fieldSelector=metadata.name%3Db",
            no("node 'a' cannot read 'b', only its own Node object"),
        ),
        ("a", Method::POST, "/api/v1/nodes", allow.clone()),
        ("a", Method::PATCH, "/api/v1/nodes/b", allow.clone()),
        ("a", Method::PUT, "/api/v1/nodes/a/status", allow.clone()),
        ("a", Method::DELETE, "/api/v1/nodes/a", no("")),
        ("a", Method::GET, "/api/v1/nodes/a/proxy/metrics", no("")),
    ] {
        assert_eq!(
            decide_as(node, method.clone(), path),
            want,
            "{node} {method} {path}"
        );
    }
}
