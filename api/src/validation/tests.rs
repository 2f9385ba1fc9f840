use serde_json::{Value, json};

use super::*;
use crate::object::{FieldValidation, decode};
use crate::registry::by_kind;

/// Decodes (with defaults) and validates; returns the error message or "".
fn check(api_version: &str, kind: &str, v: Value) -> String {
    let info = by_kind(api_version, kind).unwrap();
    let d = decode(info, v, FieldValidation::Strict).unwrap();
    match validate_create(info, &d.value) {
        Ok(()) => String::new(),
        Err(e) => {
            assert_eq!(e.code, 422);
            e.message
        }
    }
}

fn pod(container: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [container]}})
}

fn pod_errs(container: Value) -> String {
    check("v1", "Pod", pod(container))
}

#[test]
fn valid_pod_passes() {
    assert_eq!(
        pod_errs(
            json!({"name": "c", "image": "nginx", "ports": [{"containerPort": 80, "name": "http"}]})
        ),
        ""
    );
}

#[test]
fn object_meta_rules() {
    let msg = check(
        "v1",
        "Pod",
        json!({"metadata": {"namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
    );
    assert_eq!(
        msg,
        "Pod \"\" is invalid: metadata.name: Required value: name or generateName is required"
    );
    let msg = check(
        "v1",
        "Pod",
        json!({"metadata": {"name": "Foo", "namespace": "default"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
    );
    assert_eq!(
        msg,
        "Pod \"Foo\" is invalid: metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    let msg = check(
        "v1",
        "Pod",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
    );
    assert_eq!(
        msg,
        "Pod \"p\" is invalid: metadata.namespace: Required value"
    );
    let msg = check("v1", "Namespace", json!({"metadata": {"name": "a.b"}}));
    assert!(msg.contains("metadata.name: Invalid value: \"a.b\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used"), "{msg}");
    let msg = check(
        "v1",
        "Node",
        json!({"metadata": {"name": "n", "namespace": "x"}}),
    );
    assert_eq!(
        msg,
        "Node \"n\" is invalid: metadata.namespace: Forbidden: not allowed on this type"
    );
    let msg = check(
        "v1",
        "Service",
        json!({"metadata": {"name": "1svc", "namespace": "d"}, "spec": {"ports": [{"port": 80}]}}),
    );
    assert!(msg.contains("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character"), "{msg}");
    let msg = check(
        "v1",
        "ConfigMap",
        json!({"metadata": {"name": "c", "namespace": "d", "labels": {"a": "-x-"}}}),
    );
    assert!(msg.starts_with("ConfigMap \"c\" is invalid: metadata.labels: Invalid value: \"-x-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex"), "{msg}");
    let msg = check(
        "v1",
        "ConfigMap",
        json!({"metadata": {"name": "c", "namespace": "d", "labels": {"a/b/c": "x"}}}),
    );
    assert!(
        msg.contains("metadata.labels: Invalid value: \"a/b/c\": a qualified name must consist of"),
        "{msg}"
    );
    let msg = check(
        "v1",
        "ConfigMap",
        json!({"metadata": {"generateName": "web-", "namespace": "d"}}),
    );
    assert_eq!(
        msg,
        "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required"
    );
}

#[test]
fn container_rules() {
    assert_eq!(
        pod_errs(json!({"image": "x"})),
        "Pod \"p\" is invalid: spec.containers[0].name: Required value"
    );
    assert_eq!(
        pod_errs(json!({"name": "c"})),
        "Pod \"p\" is invalid: spec.containers[0].image: Required value"
    );
    let msg = check(
        "v1",
        "Pod",
        json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": []}}),
    );
    assert_eq!(msg, "Pod \"p\" is invalid: spec.containers: Required value");
    let msg = check(
        "v1",
        "Pod",
        json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [
        {"name": "c", "image": "x"}, {"name": "c", "image": "y"}]}}),
    );
    assert_eq!(
        msg,
        "Pod \"p\" is invalid: spec.containers[1].name: Duplicate value: \"c\""
    );
    let msg = pod_errs(json!({"name": "c", "image": "x", "ports": [
        {"containerPort": 70000}, {"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"},
        {"containerPort": 82, "name": "Bad_Name"}, {"containerPort": 83, "protocol": "ICMP"}]}));
    assert_eq!(
        msg,
        "Pod \"p\" is invalid: [spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive, spec.containers[0].ports[2].name: Duplicate value: \"web\", spec.containers[0].ports[3].name: Invalid value: \"Bad_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-), spec.containers[0].ports[4].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"]"
    );
    let msg = check(
        "v1",
        "Pod",
        json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {
        "restartPolicy": "Sometimes", "containers": [{"name": "c", "image": "x", "volumeMounts": [{"name": "nope", "mountPath": "/a"}]}]}}),
    );
    assert_eq!(
        msg,
        "Pod \"p\" is invalid: [spec.containers[0].volumeMounts[0].name: Not found: \"nope\", spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"]"
    );
    let msg = check(
        "v1",
        "Pod",
        json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {
        "volumes": [{"name": "v"}, {"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}], "containers": [{"name": "c", "image": "x"}]}}),
    );
    assert_eq!(
        msg,
        // Upstream's order: the source's errors, then the name's.
        "Pod \"p\" is invalid: [spec.volumes[1].hostPath: Forbidden: may not specify more than 1 volume type, spec.volumes[1].name: Duplicate value: \"v\"]"
    );
}

#[test]
fn probe_rules() {
    let c = |probe: &str, p: Value| json!({"name": "c", "image": "x", probe: p});
    assert_eq!(
        pod_errs(c(
            "livenessProbe",
            json!({"httpGet": {"port": 80}, "tcpSocket": {"port": 80}})
        )),
        "Pod \"p\" is invalid: spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"
    );
    assert_eq!(
        pod_errs(c(
            "livenessProbe",
            json!({"httpGet": {"port": 80}, "successThreshold": 2})
        )),
        "Pod \"p\" is invalid: spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"
    );
    assert_eq!(
        pod_errs(c(
            "startupProbe",
            json!({"exec": {"command": ["true"]}, "successThreshold": 3})
        )),
        "Pod \"p\" is invalid: spec.containers[0].startupProbe.successThreshold: Invalid value: 3: must be 1"
    );
    assert_eq!(
        pod_errs(c(
            "readinessProbe",
            json!({"exec": {"command": ["true"]}, "successThreshold": 3})
        )),
        ""
    );
    assert_eq!(
        pod_errs(c(
            "readinessProbe",
            json!({"periodSeconds": -1, "initialDelaySeconds": -5, "exec": {"command": ["a"]}})
        )),
        "Pod \"p\" is invalid: [spec.containers[0].readinessProbe.initialDelaySeconds: Invalid value: -5: must be greater than or equal to 0, spec.containers[0].readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0]"
    );
    assert_eq!(
        pod_errs(c(
            "readinessProbe",
            json!({"tcpSocket": {"port": 80}, "terminationGracePeriodSeconds": 5})
        )),
        "Pod \"p\" is invalid: spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes"
    );
    assert_eq!(
        pod_errs(c(
            "livenessProbe",
            json!({"tcpSocket": {"port": 80}, "terminationGracePeriodSeconds": 0})
        )),
        "Pod \"p\" is invalid: spec.containers[0].livenessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0"
    );
    assert_eq!(
        pod_errs(c("livenessProbe", json!({"periodSeconds": 3}))),
        "Pod \"p\" is invalid: spec.containers[0].livenessProbe: Required value: must specify a handler type"
    );
    assert_eq!(
        pod_errs(c("livenessProbe", json!({"exec": {}}))),
        "Pod \"p\" is invalid: spec.containers[0].livenessProbe.exec.command: Required value"
    );
    assert_eq!(
        pod_errs(c(
            "livenessProbe",
            json!({"httpGet": {"port": 0, "scheme": "FTP", "httpHeaders": [{"name": "a b", "value": "x"}]}})
        )),
        "Pod \"p\" is invalid: [spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: \"FTP\": supported values: \"HTTP\", \"HTTPS\", spec.containers[0].livenessProbe.httpGet.httpHeaders: Invalid value: \"a b\": a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')]"
    );
    assert_eq!(
        pod_errs(c("livenessProbe", json!({"tcpSocket": {"port": "no--pe"}}))),
        "Pod \"p\" is invalid: spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: \"no--pe\": must not contain consecutive hyphens"
    );
    assert_eq!(
        pod_errs(c("livenessProbe", json!({"grpc": {"port": 70000}}))),
        "Pod \"p\" is invalid: spec.containers[0].livenessProbe.grpc.port: Invalid value: 70000: must be between 1 and 65535, inclusive"
    );
    let msg = check(
        "v1",
        "Pod",
        json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {
        "initContainers": [{"name": "i", "image": "x", "readinessProbe": {"exec": {"command": ["a"]}}}],
        "containers": [{"name": "c", "image": "x"}]}}),
    );
    assert_eq!(
        msg,
        "Pod \"p\" is invalid: spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"
    );
}

fn service(spec: Value) -> String {
    check(
        "v1",
        "Service",
        json!({"metadata": {"name": "s", "namespace": "d"}, "spec": spec}),
    )
}

#[test]
fn service_rules() {
    assert_eq!(service(json!({"ports": [{"port": 80}]})), "");
    assert_eq!(
        service(json!({})),
        "Service \"s\" is invalid: spec.ports: Required value"
    );
    assert_eq!(service(json!({"clusterIP": "None"})), "");
    assert_eq!(
        service(json!({"type": "ExternalName", "externalName": "example.com"})),
        ""
    );
    assert_eq!(
        service(json!({"ports": [{"port": 80}, {"port": 81}]})),
        "Service \"s\" is invalid: [spec.ports[0].name: Required value, spec.ports[1].name: Required value]"
    );
    assert_eq!(
        service(json!({"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "a"}]})),
        "Service \"s\" is invalid: [spec.ports[1].name: Duplicate value: \"a\", spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}]"
    );
    assert_eq!(
        service(json!({"type": "Magic", "ports": [{"port": 0}]})),
        "Service \"s\" is invalid: [spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive, spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"]"
    );
    assert_eq!(
        service(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]})),
        "Service \"s\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
    );
    assert_eq!(
        service(json!({"ports": [{"port": 80, "nodePort": 30080}]})),
        "Service \"s\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
    );
    assert_eq!(
        service(json!({"type": "ExternalName", "clusterIP": "10.0.0.1"})),
        "Service \"s\" is invalid: [spec.clusterIPs: Forbidden: may not be set for ExternalName services, spec.externalName: Required value]"
    );
    assert_eq!(
        service(
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001, "name": "a"}, {"port": 81, "nodePort": 30001, "name": "b"}]})
        ),
        "Service \"s\" is invalid: spec.ports[1].nodePort: Duplicate value: 30001"
    );
    assert_eq!(
        service(json!({"ports": [{"port": 80}], "externalTrafficPolicy": "Local"})),
        "Service \"s\" is invalid: spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"
    );
    assert_eq!(
        service(json!({"ports": [{"port": 80}], "clusterIP": "10.0.0.300"})),
        "Service \"s\" is invalid: spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    );
    assert_eq!(
        service(json!({"ports": [{"port": 80}], "sessionAffinity": "Sticky"})),
        "Service \"s\" is invalid: spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\""
    );
}

fn deployment(spec: Value) -> String {
    check(
        "apps/v1",
        "Deployment",
        json!({"metadata": {"name": "d", "namespace": "x"}, "spec": spec}),
    )
}

fn template(labels: Value) -> Value {
    json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}]}})
}

#[test]
fn deployment_rules() {
    assert_eq!(
        deployment(
            json!({"selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"}))})
        ),
        ""
    );
    assert_eq!(
        deployment(
            json!({"selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "c", "z": "y"}))})
        ),
        "Deployment.apps \"d\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"a\":\"c\", \"z\":\"y\"}: `selector` does not match template `labels`"
    );
    assert_eq!(
        deployment(
            json!({"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}})
        ),
        "Deployment.apps \"d\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`"
    );
    assert_eq!(
        deployment(json!({"selector": {}, "template": template(json!({"a": "b"}))})),
        "Deployment.apps \"d\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
    );
    assert_eq!(
        deployment(
            json!({"replicas": -1, "selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"}))})
        ),
        "Deployment.apps \"d\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    assert_eq!(
        deployment(
            json!({"selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"})),
            "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}})
        ),
        "Deployment.apps \"d\" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"0%\"}: may not be 0 when `maxSurge` is 0"
    );
    assert_eq!(
        deployment(
            json!({"selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"})),
            "strategy": {"rollingUpdate": {"maxUnavailable": "x"}}})
        ),
        "Deployment.apps \"d\" is invalid: spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
    );
    assert_eq!(
        deployment(
            json!({"selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"})),
            "strategy": {"type": "Recreate", "rollingUpdate": {}}})
        ),
        "Deployment.apps \"d\" is invalid: spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
    );
    let mut t = template(json!({"a": "b"}));
    t["spec"]["restartPolicy"] = json!("Never");
    assert_eq!(
        deployment(json!({"selector": {"matchLabels": {"a": "b"}}, "template": t})),
        "Deployment.apps \"d\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
    );
    let rs = check(
        "apps/v1",
        "ReplicaSet",
        json!({"metadata": {"name": "r", "namespace": "x"},
        "spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, "template": template(json!({"a": "b"}))}}),
    );
    assert!(rs.starts_with("ReplicaSet.apps \"r\" is invalid: [spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"), "{rs}");
}

#[test]
fn update_rules() {
    let info = by_kind("apps/v1", "Deployment").unwrap();
    let d = |sel: &str| {
        decode(info, json!({"metadata": {"name": "d", "namespace": "x"}, "spec": {"selector": {"matchLabels": {"a": sel}}, "template": template(json!({"a": sel}))}}), FieldValidation::Strict).unwrap().value
    };
    assert!(validate_update(info, &d("b"), &d("b")).is_ok());
    let e = validate_update(info, &d("c"), &d("b")).unwrap_err();
    assert_eq!(
        e.message,
        "Deployment.apps \"d\" is invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"a\":\"c\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    );
    let pods = by_kind("v1", "Pod").unwrap();
    let p = |image: &str, policy: &str| {
        let mut v = pod(json!({"name": "c", "image": image}));
        v["spec"]["restartPolicy"] = json!(policy);
        decode(pods, v, FieldValidation::Strict).unwrap().value
    };
    assert!(validate_update(pods, &p("a", "Always"), &p("b", "Always")).is_ok());
    let e = validate_update(pods, &p("a", "Never"), &p("a", "Always")).unwrap_err();
    assert!(
        e.message.starts_with(
            "Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other than"
        ),
        "{}",
        e.message
    );
    let mut renamed = p("a", "Always");
    renamed["metadata"]["name"] = json!("q");
    let e = validate_update(pods, &renamed, &p("a", "Always")).unwrap_err();
    assert_eq!(
        e.message,
        "Pod \"q\" is invalid: metadata.name: Invalid value: \"q\": field is immutable"
    );
}

#[test]
fn small_kinds() {
    let msg = check(
        "v1",
        "ConfigMap",
        json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"bad key": "x"}}),
    );
    assert!(msg.starts_with("ConfigMap \"c\" is invalid: data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex"), "{msg}");
    let msg = check(
        "v1",
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls", "data": {}}),
    );
    assert_eq!(
        msg,
        "Secret \"s\" is invalid: [data[tls.crt]: Required value, data[tls.key]: Required value]"
    );
    let msg = check(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        json!({"metadata": {"name": "e", "namespace": "d"}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.300"]}]}),
    );
    assert_eq!(
        msg,
        "EndpointSlice.discovery.k8s.io \"e\" is invalid: endpoints[0].addresses[0]: Invalid value: \"10.0.0.300\": must be a valid IPv4 address"
    );
    let msg = check(
        "coordination.k8s.io/v1",
        "Lease",
        json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0}}),
    );
    assert_eq!(
        msg,
        "Lease.coordination.k8s.io \"l\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    );
    let msg = check(
        "v1",
        "Event",
        json!({"metadata": {"name": "e", "namespace": "d"}, "involvedObject": {"namespace": "other"}}),
    );
    assert_eq!(
        msg,
        "Event \"e\" is invalid: involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"
    );
    let msg = check(
        "v1",
        "Endpoints",
        json!({"metadata": {"name": "e", "namespace": "d"}, "subsets": [{"addresses": [{"ip": "x"}], "ports": [{"port": 80}]}]}),
    );
    assert_eq!(
        msg,
        "Endpoints \"e\" is invalid: subsets[0].addresses[0].ip: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
    );
}

#[test]
fn name_checks() {
    assert!(is_dns1123_label("a-b").is_empty());
    assert_eq!(
        is_dns1123_label(&"a".repeat(64))[0],
        "must be no more than 63 characters"
    );
    assert!(is_qualified_name("example.com/MyName").is_empty());
    assert_eq!(
        is_qualified_name("/x"),
        vec!["prefix part must be non-empty".to_string()]
    );
    assert!(is_valid_port_name("http").is_empty());
    assert_eq!(
        is_valid_port_name("123"),
        vec!["must contain at least one letter (a-z)".to_string()]
    );
    assert_eq!(
        is_valid_port_name("-a"),
        vec!["must not begin or end with a hyphen".to_string()]
    );
    assert!(name_is_dns_subdomain("web-", true).is_empty());
    assert!(!name_is_dns_subdomain("web-", false).is_empty());
}

#[test]
fn pod_spec_extras() {
    let spec = |s: Value| {
        check(
            "v1",
            "Pod",
            json!({"metadata": {"name": "p", "namespace": "d"}, "spec": s}),
        )
    };
    assert_eq!(
        spec(
            json!({"initContainers": [{"name": "c", "image": "x"}], "containers": [{"name": "c", "image": "x"}]})
        ),
        "Pod \"p\" is invalid: spec.initContainers[0].name: Duplicate value: \"c\""
    );
    assert_eq!(
        spec(
            json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]},
                                   {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 8080}]}]})
        ),
        "Pod \"p\" is invalid: spec.containers[1].ports[0].hostPort: Duplicate value: \"TCP//8080\""
    );
    assert_eq!(
        spec(
            json!({"containers": [{"name": "a", "image": "x", "terminationMessagePolicy": "Maybe"}]})
        ),
        "Pod \"p\" is invalid: spec.containers[0].terminationMessagePolicy: Unsupported value: \"Maybe\": supported values: \"File\", \"FallbackToLogsOnError\""
    );
    assert_eq!(
        spec(json!({"containers": [{"name": "a", "image": " x"}]})),
        "Pod \"p\" is invalid: spec.containers[0].image: Invalid value: \" x\": must not have leading or trailing whitespace"
    );
    assert_eq!(
        spec(
            json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}}]})
        ),
        "Pod \"p\" is invalid: spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"
    );
    assert_eq!(
        spec(
            json!({"tolerations": [{"operator": "Equal", "value": "x"}], "containers": [{"name": "a", "image": "x"}]})
        ),
        "Pod \"p\" is invalid: spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""
    );
    assert_eq!(
        spec(
            json!({"containers": [{"name": "a", "image": "x", "lifecycle": {"preStop": {"sleep": {"seconds": 60}}}}]})
        ),
        "Pod \"p\" is invalid: spec.containers[0].lifecycle.preStop.sleep: Invalid value: 60: must be non-negative and less than terminationGracePeriodSeconds (30)"
    );
    assert_eq!(
        spec(
            json!({"containers": [{"name": "a", "image": "x", "lifecycle": {"postStart": {"exec": {"command": ["a"]}, "sleep": {"seconds": 1}}}}]})
        ),
        "Pod \"p\" is invalid: spec.containers[0].lifecycle.postStart.sleep: Forbidden: may not specify more than 1 handler type"
    );
    assert_eq!(
        spec(json!({"activeDeadlineSeconds": 0, "containers": [{"name": "a", "image": "x"}]})),
        "Pod \"p\" is invalid: spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"
    );
    // A template may leave hostPort unset under hostNetwork (the Pod gets it defaulted).
    let t = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 80, "hostPort": 81}]}]}});
    assert_eq!(
        deployment(json!({"selector": {"matchLabels": {"a": "b"}}, "template": t})),
        "Deployment.apps \"d\" is invalid: spec.template.spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is true"
    );
}

#[test]
fn pod_update_and_status_rules() {
    let pods = by_kind("v1", "Pod").unwrap();
    let mk = |spec: Value| {
        decode(
            pods,
            json!({"metadata": {"name": "p", "namespace": "d"}, "spec": spec}),
            FieldValidation::Strict,
        )
        .unwrap()
        .value
    };
    let one = mk(
        json!({"containers": [{"name": "a", "image": "x"}], "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}),
    );
    let two = mk(json!({"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]}));
    let e = validate_update(pods, &two, &one).unwrap_err();
    assert_eq!(
        e.message,
        "Pod \"p\" is invalid: spec.containers: Forbidden: pod updates may not add or remove containers"
    );
    // tolerationSeconds may change, additions are fine.
    let more = mk(
        json!({"containers": [{"name": "a", "image": "y"}], "tolerations": [
        {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 9}, {"key": "z", "operator": "Exists"}]}),
    );
    assert!(validate_update(pods, &more, &one).is_ok());
    let changed = mk(
        json!({"containers": [{"name": "a", "image": "x"}], "tolerations": [{"key": "other", "operator": "Exists"}]}),
    );
    let e = validate_update(pods, &changed, &one).unwrap_err();
    assert_eq!(
        e.message,
        "Pod \"p\" is invalid: spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
    );
    let mut bound = one.clone();
    bound["spec"]["nodeName"] = json!("n1");
    assert!(validate_update(pods, &bound, &one).is_ok());
    let mut moved = one.clone();
    moved["spec"]["nodeName"] = json!("n2");
    let e = validate_update(pods, &moved, &bound).unwrap_err();
    assert!(
        e.message
            .contains("pod updates may not change fields other than")
            && e.message
                .contains("- \tnodeName: \"n1\",\n+ \tnodeName: \"n2\","),
        "{}",
        e.message
    );
    // Status updates.
    let mut never = one.clone();
    never["spec"]["restartPolicy"] = json!("Never");
    never["status"] = json!({"qosClass": "BestEffort", "containerStatuses": [{"name": "a", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0}}}]});
    let mut back = never.clone();
    back["status"]["containerStatuses"][0]["state"] = json!({"running": {}});
    let e = validate_status_update(pods, &back, &never).unwrap_err();
    assert_eq!(
        e.message,
        "Pod \"p\" is invalid: status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state"
    );
    let mut qos = never.clone();
    qos["status"]["qosClass"] = json!("Guaranteed");
    let e = validate_status_update(pods, &qos, &never).unwrap_err();
    assert_eq!(
        e.message,
        "Pod \"p\" is invalid: status.qosClass: Invalid value: \"Guaranteed\": field is immutable"
    );
    assert!(validate_status_update(pods, &never, &never).is_ok());
}

#[test]
fn workload_status_rules() {
    let info = by_kind("apps/v1", "ReplicaSet").unwrap();
    let rs = |status: Value| json!({"metadata": {"name": "r", "namespace": "d"}, "status": status});
    let ok = rs(json!({"replicas": 2, "readyReplicas": 2, "availableReplicas": 1}));
    assert!(validate_status_update(info, &ok, &ok).is_ok());
    let bad = rs(json!({"replicas": 1, "readyReplicas": 2, "availableReplicas": 3}));
    assert_eq!(
        validate_status_update(info, &bad, &ok).unwrap_err().message,
        "ReplicaSet.apps \"r\" is invalid: [status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas, status.availableReplicas: Invalid value: 3: cannot be greater than status.replicas, status.availableReplicas: Invalid value: 3: cannot be greater than readyReplicas]"
    );
    let deploy = by_kind("apps/v1", "Deployment").unwrap();
    let d = |c: i64| json!({"metadata": {"name": "d", "namespace": "x"}, "status": {"collisionCount": c, "observedGeneration": -1}});
    assert_eq!(
        validate_status_update(deploy, &d(1), &d(2))
            .unwrap_err()
            .message,
        "Deployment.apps \"d\" is invalid: [status.observedGeneration: Invalid value: -1: must be greater than or equal to 0, status.collisionCount: Invalid value: 1: cannot be decremented]"
    );
}

#[test]
fn event_rules() {
    let ev = |v: Value| check("v1", "Event", v);
    // Old-style events may leave involvedObject.namespace empty in `default`.
    assert_eq!(
        ev(
            json!({"metadata": {"name": "e", "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "n"}})
        ),
        ""
    );
    assert_eq!(
        ev(
            json!({"metadata": {"name": "e", "namespace": "other"}, "involvedObject": {"kind": "Node", "name": "n"}})
        ),
        "Event \"e\" is invalid: involvedObject.namespace: Invalid value: \"\": does not match event.namespace"
    );
    // New-style events (eventTime set) need the reporting fields.
    assert_eq!(
        ev(
            json!({"metadata": {"name": "e", "namespace": "d"}, "eventTime": "2026-01-01T00:00:00.000000Z",
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d"}, "reportingComponent": "kubelet", "reason": "Started"})
        ),
        "Event \"e\" is invalid: [reportingInstance: Required value, action: Required value]"
    );
}

#[test]
fn service_update_rules() {
    let info = by_kind("v1", "Service").unwrap();
    let svc = |ip: &str| {
        decode(info, json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}}), FieldValidation::Strict)
            .unwrap()
            .value
    };
    assert!(validate_update(info, &svc("10.0.0.1"), &svc("10.0.0.1")).is_ok());
    assert_eq!(
        validate_update(info, &svc("10.0.0.2"), &svc("10.0.0.1"))
            .unwrap_err()
            .message,
        "Service \"s\" is invalid: spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.2\"}: may not change once set"
    );
}

/// The causes of an update as `field: Type` (the cause reason), in order.
fn update_cause_fields(api_version: &str, kind: &str, new: Value, old: Value) -> Vec<String> {
    let info = by_kind(api_version, kind).unwrap();
    let dec = |v: Value| decode(info, v, FieldValidation::Strict).unwrap().value;
    let e = validate_update(info, &dec(new), &dec(old)).unwrap_err();
    e.details
        .unwrap()
        .causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.reason))
        .collect()
}

#[test]
fn update_causes_follow_each_kinds_update_function() {
    // Deployment: the common ObjectMeta check, then ValidateDeploymentUpdate (spec only,
    // no second ObjectMeta check), then the selector.
    let d = |label: &str, sel: &str, replicas: i64| {
        json!({"metadata": {"name": "d", "namespace": "x", "labels": {"l": label}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": sel}}, "template": template(json!({"a": sel}))}})
    };
    assert_eq!(
        update_cause_fields("apps/v1", "Deployment", d("-", "c", -1), d("ok", "b", 1)),
        vec![
            "metadata.labels: FieldValueInvalid",
            "spec.replicas: FieldValueInvalid",
            "spec.selector: FieldValueInvalid",
        ]
    );
    // ReplicaSet: its strategy checks the create rules and then the update function's
    // spec rules, so a spec error is listed twice.
    let r = |label: &str, replicas: i64| {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "r", "namespace": "x", "labels": {"l": label}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"}))}})
    };
    assert_eq!(
        update_cause_fields("apps/v1", "ReplicaSet", r("-", -1), r("ok", 1)),
        vec![
            "metadata.labels: FieldValueInvalid",
            "metadata.labels: FieldValueInvalid",
            "spec.replicas: FieldValueInvalid",
            "spec.replicas: FieldValueInvalid",
        ]
    );
    // Pod: common, meta update, the create rules (ObjectMeta again), then the update rules.
    let p = |label: &str, image: &str, uid: &str| {
        let mut v = pod(json!({"name": "c", "image": image}));
        v["metadata"]["labels"] = json!({"l": label});
        v["metadata"]["uid"] = json!(uid);
        v
    };
    assert_eq!(
        update_cause_fields("v1", "Pod", p("-", "", "u2"), p("ok", "a", "u1")),
        vec![
            "metadata.labels: FieldValueInvalid",
            "metadata.uid: FieldValueInvalid",
            "metadata.uid: FieldValueInvalid",
            "metadata.labels: FieldValueInvalid",
            "spec.containers[0].image: FieldValueRequired",
            "spec.containers[0].image: FieldValueRequired",
        ]
    );
    // Secret: meta update, type, immutability, then ValidateSecret.
    let s = |ty: &str, data: Value| json!({"metadata": {"name": "s", "namespace": "d"}, "type": ty, "immutable": true, "data": data});
    assert_eq!(
        update_cause_fields(
            "v1",
            "Secret",
            s("kubernetes.io/tls", json!({})),
            s("Opaque", json!({"a": "eA=="}))
        ),
        vec![
            "type: FieldValueInvalid",
            "data: FieldValueForbidden",
            "data[tls.crt]: FieldValueRequired",
            "data[tls.key]: FieldValueRequired",
        ]
    );
    // EndpointSlice: ValidateEndpointSlice, then addressType is immutable.
    let e = |at: &str, addr: &str| {
        json!({"metadata": {"name": "e", "namespace": "d"}, "addressType": at,
            "endpoints": [{"addresses": [addr]}]})
    };
    assert_eq!(
        update_cause_fields(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            e("IPv6", "10.0.0.1"),
            e("IPv4", "10.0.0.1")
        ),
        vec![
            "endpoints[0].addresses[0]: FieldValueInvalid",
            "addressType: FieldValueInvalid",
        ]
    );
}

#[test]
fn path_segment_names() {
    assert!(path_segment_name("Any_Name", false).is_empty());
    assert_eq!(path_segment_name("..", false), vec!["may not be '..'"]);
    assert_eq!(
        path_segment_name("a/b%c", false),
        vec!["may not contain '/'", "may not contain '%'"]
    );
    assert!(path_segment_name(".", true).is_empty());
}

#[test]
fn events_names_need_only_be_path_segments() {
    let ev = |name: &str, involved_ns: &str| {
        json!({"metadata": {"name": name, "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": involved_ns}})
    };
    assert_eq!(check("v1", "Event", ev("Pod_P.1", "d")), "");
    assert_eq!(
        check("v1", "Event", ev("a/b", "d")),
        "Event \"a/b\" is invalid: metadata.name: Invalid value: \"a/b\": may not contain '/'"
    );
    // The event rules first; the generic ObjectMeta check only once they pass.
    assert_eq!(
        check("v1", "Event", ev("a/b", "other")),
        "Event \"a/b\" is invalid: involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"
    );
}

fn pod_with(volumes: Value, mounts: Value) -> String {
    check(
        "v1",
        "Pod",
        json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"volumes": volumes,
            "containers": [{"name": "c", "image": "x", "volumeMounts": mounts}]}}),
    )
}

#[test]
fn sub_paths_must_stay_inside_their_volume() {
    let vol = json!([{"name": "v", "emptyDir": {}}]);
    // Upstream names the list (`volumeMounts.subPath`), not the entry, for these.
    assert_eq!(
        pod_with(
            vol.clone(),
            json!([{"name": "v", "mountPath": "/a", "subPath": "../.."}])
        ),
        "Pod \"p\" is invalid: spec.containers[0].volumeMounts.subPath: Invalid value: \"../..\": must not contain '..'"
    );
    assert_eq!(
        pod_with(
            vol.clone(),
            json!([{"name": "v", "mountPath": "/a", "subPath": "/etc"}])
        ),
        "Pod \"p\" is invalid: spec.containers[0].volumeMounts.subPath: Invalid value: \"/etc\": must be a relative path"
    );
    assert_eq!(
        pod_with(
            vol.clone(),
            json!([{"name": "v", "mountPath": "/a", "subPath": "/x/../y"}])
        ),
        "Pod \"p\" is invalid: [spec.containers[0].volumeMounts.subPath: Invalid value: \"/x/../y\": must be a relative path, spec.containers[0].volumeMounts.subPath: Invalid value: \"/x/../y\": must not contain '..'"
            .to_string()
            + "]"
    );
    assert_eq!(
        pod_with(
            vol.clone(),
            json!([{"name": "v", "mountPath": "/a", "subPath": "a", "subPathExpr": "$(X)/../b"}])
        ),
        "Pod \"p\" is invalid: [spec.containers[0].volumeMounts[0].subPathExpr: Invalid value: \"$(X)/../b\": subPathExpr and subPath are mutually exclusive, spec.containers[0].volumeMounts.subPathExpr: Invalid value: \"$(X)/../b\": must not contain '..']"
    );
    // `..` inside a name is fine; so is a plain relative path.
    assert_eq!(
        pod_with(
            vol,
            json!([{"name": "v", "mountPath": "/a", "subPath": "a..b/c"}, {"name": "v", "mountPath": "/b", "subPathExpr": "$(POD)"}])
        ),
        ""
    );
}

#[test]
fn projected_file_paths_must_be_local_and_not_reserved() {
    let mount = json!([{"name": "v", "mountPath": "/a"}]);
    // A volume with errors cannot be mounted either (upstream keeps only valid volumes).
    assert_eq!(
        pod_with(
            json!([{"name": "v", "secret": {"secretName": "s", "items": [{"key": "k", "path": "../../etc/x"}]}}]),
            mount.clone()
        ),
        "Pod \"p\" is invalid: [spec.volumes[0].secret.items[0].path: Invalid value: \"../../etc/x\": must not contain '..', spec.containers[0].volumeMounts[0].name: Not found: \"v\"]"
    );
    assert_eq!(
        pod_with(
            json!([{"name": "v", "configMap": {"name": "c", "defaultMode": 4096, "items": [{"key": "", "path": "..data", "mode": -1}]}}]),
            json!([])
        ),
        "Pod \"p\" is invalid: [spec.volumes[0].configMap.defaultMode: Invalid value: 4096: must be a number between 0 and 0777 (octal), both inclusive, spec.volumes[0].configMap.items[0].key: Required value, spec.volumes[0].configMap.items[0].path: Invalid value: \"..data\": must not start with '..', spec.volumes[0].configMap.items[0].mode: Invalid value: -1: must be a number between 0 and 0777 (octal), both inclusive]"
    );
    // Upstream names the source (`downwardAPI.path`), not the item, here.
    assert_eq!(
        pod_with(
            json!([{"name": "v", "downwardAPI": {"items": [
                {"path": "/abs", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "a/../../b", "fieldRef": {"fieldPath": "spec.nodeName"}},
                {"path": "ok"}]}}]),
            json!([])
        ),
        "Pod \"p\" is invalid: [spec.volumes[0].downwardAPI.path: Invalid value: \"/abs\": must be a relative path, spec.volumes[0].downwardAPI.path: Invalid value: \"a/../../b\": must not contain '..', spec.volumes[0].downwardAPI.fieldRef.fieldPath: Unsupported value: \"spec.nodeName\": supported values: \"metadata.annotations\", \"metadata.labels\", \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", spec.volumes[0].downwardAPI: Required value: one of fieldRef and resourceFieldRef is required]"
    );
    assert_eq!(
        pod_with(
            json!([{"name": "v", "projected": {"sources": [
                {"secret": {"name": "s", "items": [{"key": "k", "path": "x"}]}},
                {"configMap": {"name": "c", "items": [{"key": "k", "path": "x"}, {"key": "j", "path": "../y"}]}},
                {"serviceAccountToken": {"path": "/t"}}]}}]),
            json!([])
        ),
        "Pod \"p\" is invalid: [spec.volumes[0].projected: Invalid value: \"c\": conflicting duplicate paths, spec.volumes[0].projected.sources[1].configMap.items[1].path: Invalid value: \"../y\": must not contain '..', spec.volumes[0].projected.path: Invalid value: \"/t\": must be a relative path]"
    );
    assert_eq!(
        pod_with(
            json!([{"name": "v", "hostPath": {"path": "/a/../etc", "type": "Dir"}}, {"name": "w", "gitRepo": {"repository": "r", "directory": "../x"}}]),
            json!([])
        ),
        "Pod \"p\" is invalid: [spec.volumes[0].hostPath.path: Invalid value: \"/a/../etc\": must not contain '..', spec.volumes[0].hostPath.type: Unsupported value: \"Dir\": supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\", spec.volumes[1].gitRepo.directory: Invalid value: \"../x\": must not contain '..']"
    );
}

/// A CSR object for a kubelet serving request (`request` PEM, base64 as JSON carries it).
fn csr(name: &str, extra: Value) -> Value {
    use base64::Engine as _;
    let pem = crate::certificates::tests::request(
        "system:node:n1",
        &["system:nodes"],
        vec![rcgen::SanType::IpAddress("10.0.0.1".parse().unwrap())],
    );
    let mut v = json!({
        "metadata": {"name": name},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "kubernetes.io/kubelet-serving",
            "usages": ["digital signature", "server auth"],
        },
    });
    v = crate::patch::merge_patch(&v, &extra);
    v
}

#[test]
fn certificate_signing_request_rules() {
    let c = |extra: Value| {
        check(
            "certificates.k8s.io/v1",
            "CertificateSigningRequest",
            csr("r", extra),
        )
    };
    assert_eq!(c(json!({})), "");
    // Any name the generic check takes (a path segment), unlike most kinds.
    assert_eq!(
        check(
            "certificates.k8s.io/v1",
            "CertificateSigningRequest",
            csr("Upper:Case", json!({}))
        ),
        ""
    );
    assert_eq!(
        check(
            "certificates.k8s.io/v1",
            "CertificateSigningRequest",
            csr("..", json!({}))
        ),
        "CertificateSigningRequest.certificates.k8s.io \"..\" is invalid: metadata.name: Invalid value: \"..\": may not be '..'"
    );
    assert_eq!(
        c(
            json!({"spec": {"usages": [], "signerName": "kubernetes.io/legacy-unknown", "expirationSeconds": 599}})
        ),
        "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: [spec.usages: Required value, spec.signerName: Invalid value: \"kubernetes.io/legacy-unknown\": the legacy signerName is not allowed via this API version, spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)]"
    );
    let msg = c(
        json!({"spec": {"usages": ["server auth", "bogus", "server auth"], "signerName": "example"}}),
    );
    assert_eq!(
        msg,
        "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: [spec.usages[1]: Unsupported value: \"bogus\": supported values: \"any\", \"cert sign\", \"client auth\", \"code signing\", \"content commitment\", \"crl sign\", \"data encipherment\", \"decipher only\", \"digital signature\", \"email protection\", \"encipher only\", \"ipsec end system\", \"ipsec tunnel\", \"ipsec user\", \"key agreement\", \"key encipherment\", \"microsoft sgc\", \"netscape sgc\", \"ocsp signing\", \"s/mime\", \"server auth\", \"signing\", \"timestamping\", spec.usages[2]: Duplicate value: \"server auth\", spec.signerName: Invalid value: \"example\": must be a fully qualified domain and path of the form 'example.com/signer-name']"
    );
    assert_eq!(
        c(json!({"spec": {"signerName": "example/x"}})),
        "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: spec.signerName: Invalid value: \"example\": should be a domain with at least two segments separated by dots"
    );
    // A request that is no CSR: its bytes are shown as Go prints a []byte.
    assert_eq!(
        c(json!({"spec": {"request": "aGk="}})),
        "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: spec.request: Invalid value: []byte{0x68, 0x69}: PEM block type must be CERTIFICATE REQUEST"
    );
    assert_eq!(
        c(json!({"status": {"conditions": [
            {"type": "Approved", "status": "False"},
            {"type": "Denied", "status": "True"},
            {"type": "Denied", "status": "True"},
            {"type": "", "status": ""},
        ]}})),
        // (Both Denied conditions clash with Approved; the aggregate says so once.)
        "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: [status.conditions[0].status: Unsupported value: \"False\": supported values: \"True\", status.conditions: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive, status.conditions[2].type: Duplicate value: \"Denied\", status.conditions[3].type: Required value, status.conditions[3].status: Required value]"
    );
    assert_eq!(
        c(json!({"status": {"certificate": "aGk="}})),
        "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: status.certificate: Invalid value: \"<certificate data>\": must contain at least one CERTIFICATE PEM block"
    );
}

#[test]
fn certificate_signing_request_updates_by_subresource() {
    let info = by_kind("certificates.k8s.io/v1", "CertificateSigningRequest").unwrap();
    let obj = |extra: Value| {
        let mut v = decode(info, csr("r", extra), FieldValidation::Strict)
            .unwrap()
            .value;
        v["metadata"]["uid"] = json!("u");
        v
    };
    let approved =
        json!({"status": {"conditions": [{"type": "Approved", "status": "True", "reason": "R"}]}});
    let old = obj(json!({}));
    // Approval goes through /approval only.
    assert!(validate_approval_update(info, &obj(approved.clone()), &old).is_ok());
    assert_eq!(
        validate_update(info, &obj(approved.clone()), &old)
            .unwrap_err()
            .message,
        "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: status.conditions: Forbidden: updates may not add a condition of type \"Approved\""
    );
    assert_eq!(
        validate_status_update(info, &obj(approved.clone()), &old)
            .unwrap_err()
            .message,
        "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: status.conditions: Forbidden: updates may not add a condition of type \"Approved\""
    );
    // No way back once approved.
    assert_eq!(
        validate_approval_update(info, &old, &obj(approved.clone()))
            .unwrap_err()
            .message,
        "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: status.conditions: Forbidden: updates may not remove a condition of type \"Approved\""
    );
    // The certificate through /status only, and once.
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["a".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    let signed = |pem: &str| {
        use base64::Engine as _;
        let mut v = obj(approved.clone());
        v["status"]["certificate"] = json!(base64::engine::general_purpose::STANDARD.encode(pem));
        v
    };
    let with_cert = signed(&cert);
    assert!(validate_status_update(info, &with_cert, &obj(approved.clone())).is_ok());
    assert_eq!(
        validate_approval_update(info, &with_cert, &obj(approved.clone()))
            .unwrap_err()
            .message,
        "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: status.certificate: Forbidden: updates may not set certificate content"
    );
    let other = rcgen::CertificateParams::new(vec!["b".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    assert_eq!(
        validate_status_update(info, &signed(&other), &with_cert)
            .unwrap_err()
            .message,
        "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: status.certificate: Forbidden: updates may not modify existing certificate content"
    );
}

#[test]
fn ephemeral_containers_are_checked_as_upstream() {
    let mut p = pod(json!({"name": "app", "image": "nginx"}));
    p["spec"]["ephemeralContainers"] = json!([
        {"name": "debugger", "image": "busybox", "targetContainerName": "app", "resources": {}},
    ]);
    assert_eq!(check("v1", "Pod", p.clone()), "");
    p["spec"]["ephemeralContainers"] = json!([
        {"name": "app", "image": "busybox", "targetContainerName": "nope",
         "ports": [{"containerPort": 80}], "readinessProbe": {"tcpSocket": {"port": 80}},
         "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "x"}]},
    ]);
    p["spec"]["volumes"] = json!([{"name": "v", "emptyDir": {}}]);
    let msg = check("v1", "Pod", p);
    for want in [
        "spec.ephemeralContainers[0].name: Duplicate value: \"app\"",
        "spec.ephemeralContainers[0].targetContainerName: Not found: \"nope\"",
        "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
        "spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
        "spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container",
    ] {
        assert!(msg.contains(want), "{want} in {msg}");
    }
}

fn pdb_errs(spec: Value) -> String {
    check(
        "policy/v1",
        "PodDisruptionBudget",
        json!({"metadata": {"name": "b", "namespace": "default"}, "spec": spec}),
    )
}

#[test]
fn pod_disruption_budget_rules() {
    assert_eq!(pdb_errs(json!({"minAvailable": 1, "selector": {}})), "");
    assert_eq!(pdb_errs(json!({"maxUnavailable": "25%"})), "");
    assert_eq!(
        pdb_errs(json!({"minAvailable": 1, "maxUnavailable": 1})),
        "PodDisruptionBudget.policy \"b\" is invalid: spec: Invalid value: policy.PodDisruptionBudgetSpec{MinAvailable:(*intstr.IntOrString)(0xc000000000), Selector:(*v1.LabelSelector)(nil), MaxUnavailable:(*intstr.IntOrString)(0xc000000000), UnhealthyPodEvictionPolicy:(*policy.UnhealthyPodEvictionPolicyType)(nil)}: minAvailable and maxUnavailable cannot be both set"
    );
    assert_eq!(
        pdb_errs(json!({"minAvailable": -1})),
        "PodDisruptionBudget.policy \"b\" is invalid: spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"
    );
    assert_eq!(
        pdb_errs(json!({"maxUnavailable": "120%"})),
        "PodDisruptionBudget.policy \"b\" is invalid: spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"120%\"}: must not be greater than 100%"
    );
    assert_eq!(
        pdb_errs(json!({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Never"})),
        "PodDisruptionBudget.policy \"b\" is invalid: spec.unhealthyPodEvictionPolicy: Unsupported value: \"Never\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\""
    );
    assert!(
        pdb_errs(json!({"selector": {"matchLabels": {"a": "-bad-"}}}))
            .contains("spec.selector.matchLabels: Invalid value: \"-bad-\"")
    );
    // Names need only be path segments (the generic check after the spec's).
    assert_eq!(
        check(
            "policy/v1",
            "PodDisruptionBudget",
            json!({"metadata": {"name": "Upper_Case", "namespace": "default"}, "spec": {}})
        ),
        ""
    );
}

#[test]
fn pod_disruption_budget_status_rules() {
    let info = by_kind("policy/v1", "PodDisruptionBudget").unwrap();
    let old = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "b", "namespace": "default", "resourceVersion": "1"}, "spec": {}});
    let mut new = old.clone();
    new["status"] = json!({"disruptionsAllowed": -1, "currentHealthy": 0, "desiredHealthy": 0,
        "expectedPods": 0, "conditions": [{"type": "DisruptionAllowed", "status": "Maybe",
        "reason": "1bad", "message": ""}]});
    let e = validate_status_update(info, &new, &old).unwrap_err();
    assert_eq!(
        e.message,
        "PodDisruptionBudget.policy \"b\" is invalid: [status.conditions[0].status: Unsupported value: \"Maybe\": supported values: \"False\", \"True\", \"Unknown\", status.conditions[0].lastTransitionTime: Required value: must be set, status.conditions[0].reason: Invalid value: \"1bad\": a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName',  or 'ReasonA,ReasonB',  or 'ReasonA:ReasonB', regex used for validation is '[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?'), status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0]"
    );
}

fn replication_controller(spec: Value) -> String {
    check(
        "v1",
        "ReplicationController",
        json!({"metadata": {"name": "r", "namespace": "x"}, "spec": spec}),
    )
}

/// Upstream `ValidateReplicationControllerSpec` / `ValidatePodTemplateSpecForRC`, after
/// `SetDefaults_ReplicationController` (the selector defaults to the template's labels).
#[test]
fn replication_controller_rules() {
    assert_eq!(
        replication_controller(json!({"template": template(json!({"a": "b"}))})),
        ""
    );
    assert_eq!(
        replication_controller(
            json!({"selector": {"a": "b"}, "template": template(json!({"a": "c"}))})
        ),
        "ReplicationController \"r\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"a\":\"c\"}: `selector` does not match template `labels`"
    );
    assert_eq!(
        replication_controller(json!({})),
        "ReplicationController \"r\" is invalid: [spec.selector: Required value, spec.template: Required value]"
    );
    assert_eq!(
        replication_controller(json!({"replicas": -1, "minReadySeconds": -2,
            "template": template(json!({"a": "b"}))})),
        "ReplicationController \"r\" is invalid: [spec.minReadySeconds: Invalid value: -2: must be greater than or equal to 0, spec.replicas: Invalid value: -1: must be greater than or equal to 0]"
    );
    let mut t = template(json!({"a": "b"}));
    t["spec"]["restartPolicy"] = json!("OnFailure");
    t["spec"]["activeDeadlineSeconds"] = json!(5);
    assert_eq!(
        replication_controller(json!({"template": t})),
        "ReplicationController \"r\" is invalid: [spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\", spec.template.spec.activeDeadlineSeconds: Invalid value: 5: must not be specified]"
    );
}
