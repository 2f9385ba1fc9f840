//! Service validation through decode (with defaults) and `validate_create`/`validate_update`,
//! comparing the whole message kubectl prints with upstream's.

use serde_json::{Value, json};

use crate::object::{FieldValidation, decode};
use crate::registry::by_kind;
use crate::validation::{validate_create, validate_update};

fn decoded(v: Value) -> Value {
    let info = by_kind("v1", "Service").unwrap();
    decode(info, v, FieldValidation::Strict).unwrap().value
}

fn object(spec: Value) -> Value {
    json!({"metadata": {"name": "s", "namespace": "d"}, "spec": spec})
}

/// The 422 message of creating `obj`, or "" when valid.
fn create(obj: Value) -> String {
    let info = by_kind("v1", "Service").unwrap();
    match validate_create(info, &decoded(obj)) {
        Ok(()) => String::new(),
        Err(e) => {
            assert_eq!(e.code, 422);
            e.message
        }
    }
}

fn spec(spec: Value) -> String {
    create(object(spec))
}

fn invalid(errs: &str) -> String {
    format!("Service \"s\" is invalid: {errs}")
}

#[test]
fn selector_and_ports() {
    assert_eq!(
        spec(json!({"selector": {"app": "bad value!"}, "ports": [{"port": 80}]})),
        invalid(
            "spec.selector: Invalid value: \"bad value!\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        )
    );
    assert_eq!(
        spec(json!({"selector": {"-app": "x"}, "ports": [{"port": 80}]})),
        invalid(
            "spec.selector: Invalid value: \"-app\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    );
    assert_eq!(
        spec(json!({"ports": [{"port": 70000, "targetPort": 8080}]})),
        invalid("spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive")
    );
    assert_eq!(
        spec(json!({"ports": [{"port": 80, "targetPort": "Bad_Name"}]})),
        invalid(
            "spec.ports[0].targetPort: Invalid value: \"Bad_Name\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
        )
    );
    assert_eq!(
        spec(json!({"ports": [{"port": 80, "protocol": "HTTP"}]})),
        invalid(
            "spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
        )
    );
    assert_eq!(
        spec(json!({"ports": [{"port": 80, "name": "web"}, {"port": 81}]})),
        invalid("spec.ports[1].name: Required value")
    );
    assert_eq!(
        spec(json!({"ports": [{"port": 80, "name": "Web"}]})),
        invalid(
            "spec.ports[0].name: Invalid value: \"Web\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    );
    assert_eq!(
        spec(json!({"ports": [{"port": 80, "appProtocol": "not a name"}]})),
        invalid(
            "spec.ports[0].appProtocol: Invalid value: \"not a name\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    );
    assert_eq!(
        spec(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 99999}]})),
        invalid(
            "spec.ports[0].nodePort: Invalid value: 99999: provided port is not in the valid range. The range of valid ports is 30000-32767"
        )
    );
    // Same port number, different protocols: fine.
    assert_eq!(
        spec(
            json!({"ports": [{"port": 53, "name": "a", "protocol": "UDP"}, {"port": 53, "name": "b"}]})
        ),
        ""
    );
}

#[test]
fn cluster_ips_and_families() {
    assert_eq!(
        spec(
            json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.6"], "ports": [{"port": 80}]})
        ),
        invalid(
            "spec.clusterIPs: Invalid value: []string{\"10.96.0.6\"}: first value must match `clusterIP`"
        )
    );
    assert_eq!(
        spec(json!({"clusterIPs": ["10.96.0.6"], "ports": [{"port": 80}]})),
        invalid(
            "spec.clusterIPs: Invalid value: []string{\"10.96.0.6\"}: must be empty when `clusterIP` is not specified"
        )
    );
    assert_eq!(
        spec(
            json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5", "10.96.0.6"],
            "ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]})
        ),
        invalid(
            "spec.clusterIPs: Invalid value: []string{\"10.96.0.5\", \"10.96.0.6\"}: may specify no more than one IP for each IP family"
        )
    );
    assert_eq!(
        spec(
            json!({"clusterIP": "None", "clusterIPs": ["None", "10.96.0.6"], "ports": [{"port": 80}]})
        ),
        invalid(
            "spec.clusterIPs: Invalid value: []string{\"None\", \"10.96.0.6\"}: 'None' must be the first and only value"
        )
    );
    assert_eq!(
        spec(json!({"clusterIP": "fd00::5", "ipFamilies": ["IPv4"], "ports": [{"port": 80}]})),
        invalid(
            "spec.clusterIPs[0]: Invalid value: \"fd00::5\": expected an IPv4 value as indicated by `ipFamilies[0]`"
        )
    );
    assert_eq!(
        spec(
            json!({"ipFamilies": ["IPv5", "IPv5"], "ipFamilyPolicy": "Triple", "ports": [{"port": 80}]})
        ),
        invalid(
            "[spec.ipFamilies[0]: Unsupported value: \"IPv5\": supported values: \"IPv4\", \"IPv6\", spec.ipFamilies[1]: Unsupported value: \"IPv5\": supported values: \"IPv4\", \"IPv6\", spec.ipFamilies[1]: Duplicate value: \"IPv5\", spec.ipFamilyPolicy: Unsupported value: \"Triple\": supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\"]"
        )
    );
    assert_eq!(
        spec(json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]})),
        invalid(
            "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
        )
    );
}

#[test]
fn external_ips_and_load_balancer_fields() {
    assert_eq!(
        spec(
            json!({"externalIPs": ["127.0.0.1", "0.0.0.0", "fe80::1", "224.0.0.7", "nope", "192.0.2.7"],
            "ports": [{"port": 80}]})
        ),
        invalid(
            "[spec.externalIPs[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128), spec.externalIPs[1]: Invalid value: \"0.0.0.0\": may not be unspecified (0.0.0.0), spec.externalIPs[2]: Invalid value: \"fe80::1\": may not be in the link-local range (169.254.0.0/16, fe80::/10), spec.externalIPs[3]: Invalid value: \"224.0.0.7\": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10), spec.externalIPs[4]: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)]"
        )
    );
    assert_eq!(
        spec(
            json!({"loadBalancerSourceRanges": ["10.0.0.0/8", " 10.1.0.0/33 "], "ports": [{"port": 80}]})
        ),
        invalid(
            "[spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer', spec.LoadBalancerSourceRanges[1]: Invalid value: \"10.1.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)]"
        )
    );
    assert_eq!(
        create(
            json!({"metadata": {"name": "s", "namespace": "d", "annotations": {
                "service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8, x"}},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
        ),
        invalid(
            "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]: Invalid value: \"x\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
        )
    );
    assert_eq!(
        spec(
            json!({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"],
            "loadBalancerClass": "example.com/lb", "ports": [{"port": 80}]})
        ),
        ""
    );
    assert_eq!(
        spec(json!({"loadBalancerClass": "example.com/lb", "ports": [{"port": 80}]})),
        invalid(
            "spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"
        )
    );
    assert_eq!(
        spec(json!({"type": "LoadBalancer", "loadBalancerClass": "a b", "ports": [{"port": 80}]})),
        invalid(
            "spec.loadBalancerClass: Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    );
    assert_eq!(
        spec(json!({"type": "NodePort", "healthCheckNodePort": 31000, "ports": [{"port": 80}]})),
        invalid(
            "spec.healthCheckNodePort: Invalid value: 31000: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
        )
    );
    assert_eq!(
        spec(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 70000,
            "ports": [{"port": 80}]})
        ),
        invalid(
            "spec.healthCheckNodePort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        )
    );
    assert_eq!(
        spec(json!({"trafficDistribution": "Anywhere", "ports": [{"port": 80}]})),
        invalid(
            "spec.trafficDistribution: Unsupported value: \"Anywhere\": supported values: \"PreferClose\""
        )
    );
    assert_eq!(
        create(
            json!({"metadata": {"name": "s", "namespace": "d", "annotations": {
                "service.kubernetes.io/topology-mode": "Auto",
                "service.kubernetes.io/topology-aware-hints": "Disabled"}},
            "spec": {"ports": [{"port": 80}]}})
        ),
        invalid(
            "metadata.annotations[service.kubernetes.io/topology-mode]: Invalid value: \"Auto\": must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified"
        )
    );
}

#[test]
fn updates_keep_allocated_fields() {
    let info = by_kind("v1", "Service").unwrap();
    let update = |new: Value, old: Value| match validate_update(info, &decoded(new), &decoded(old))
    {
        Ok(()) => String::new(),
        Err(e) => e.message,
    };
    let lb = |class: &str| {
        object(
            json!({"type": "LoadBalancer", "clusterIP": "10.96.0.5", "loadBalancerClass": class,
            "ports": [{"port": 80, "nodePort": 30080}]}),
        )
    };
    assert_eq!(update(lb("a.io/x"), lb("a.io/x")), "");
    assert_eq!(
        update(lb("a.io/y"), lb("a.io/x")),
        invalid("spec.loadBalancerClass: Invalid value: \"a.io/y\": may not change once set")
    );
    let dual = |ips: Value, families: Value, policy: &str| {
        object(
            json!({"clusterIP": ips[0], "clusterIPs": ips, "ipFamilies": families,
            "ipFamilyPolicy": policy, "ports": [{"port": 80}]}),
        )
    };
    let old = dual(
        json!(["10.96.0.5", "fd00::5"]),
        json!(["IPv4", "IPv6"]),
        "PreferDualStack",
    );
    // Releasing the secondary needs SingleStack.
    assert_eq!(
        update(
            dual(json!(["10.96.0.5"]), json!(["IPv4"]), "PreferDualStack"),
            old.clone()
        ),
        invalid(
            "[spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be set to 'SingleStack' when releasing the secondary clusterIP, spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be set to 'SingleStack' when releasing the secondary ipFamily]"
        )
    );
    assert_eq!(
        update(
            dual(json!(["10.96.0.5"]), json!(["IPv4"]), "SingleStack"),
            old.clone()
        ),
        ""
    );
    // Both families changed: upstream reports each at index 0, and the message lists a
    // repeated error once (`ToAggregate`). The update rules come before `ValidateService`.
    assert_eq!(
        update(
            dual(
                json!(["10.96.0.5", "fd00::5"]),
                json!(["IPv6", "IPv4"]),
                "PreferDualStack"
            ),
            old
        ),
        invalid(
            "[spec.ipFamilies[0]: Invalid value: []string{\"IPv6\", \"IPv4\"}: may not change once set, spec.clusterIPs[0]: Invalid value: \"10.96.0.5\": expected an IPv6 value as indicated by `ipFamilies[0]`, spec.clusterIPs[1]: Invalid value: \"fd00::5\": expected an IPv4 value as indicated by `ipFamilies[1]`]"
        )
    );
    let local = |hc: i32| {
        object(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "clusterIP": "10.96.0.5",
            "healthCheckNodePort": hc, "ports": [{"port": 80, "nodePort": 30080}]}),
        )
    };
    assert_eq!(
        update(local(31001), local(31000)),
        invalid("spec.healthCheckNodePort: Forbidden: field is immutable")
    );
}

#[test]
fn load_balancer_status() {
    let info = by_kind("v1", "Service").unwrap();
    let with_status = |ty: &str, ingress: Value| {
        let mut v = decoded(object(json!({"type": ty, "clusterIP": "10.96.0.5",
            "ports": [{"port": 80, "nodePort": 30080}]})));
        v["status"] = json!({"loadBalancer": {"ingress": ingress}});
        v
    };
    let status = |new: Value, old: Value| match crate::validation::validate_status_update(
        info, &new, &old,
    ) {
        Ok(()) => String::new(),
        Err(e) => e.message,
    };
    let old = with_status("LoadBalancer", json!([]));
    assert_eq!(
        status(
            with_status(
                "LoadBalancer",
                json!([{"ip": "127.0.0.1", "ipMode": "VIP"}])
            ),
            old.clone()
        ),
        ""
    );
    assert_eq!(
        status(
            with_status(
                "LoadBalancer",
                json!([{"ip": "1.2.3", "ipMode": "Tunnel"}, {"ipMode": "VIP", "hostname": "10.0.0.1"}])
            ),
            old.clone()
        ),
        invalid(
            "[status.loadBalancer.ingress[0].ip: Invalid value: \"1.2.3\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff), status.loadBalancer.ingress[0].ipMode: Unsupported value: \"Tunnel\": supported values: \"Proxy\", \"VIP\", status.loadBalancer.ingress[1].ipMode: Forbidden: may not be specified when `ip` is not set, status.loadBalancer.ingress[1].hostname: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address]"
        )
    );
    assert_eq!(
        status(
            with_status("NodePort", json!([{"ip": "127.0.0.1", "ipMode": "VIP"}])),
            with_status("NodePort", json!([]))
        ),
        invalid(
            "status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"
        )
    );
}

/// The causes of updating `old` to `new` as `field: message` lines, in order.
fn update_causes(new: Value, old: Value) -> Vec<String> {
    let info = by_kind("v1", "Service").unwrap();
    let e = validate_update(info, &decoded(new), &decoded(old)).unwrap_err();
    e.details
        .unwrap()
        .causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

#[test]
fn update_causes_in_upstream_order() {
    // rest.BeforeUpdate's common ObjectMeta check, then ValidateServiceUpdate: meta update,
    // the update rules, then ValidateService (ObjectMeta again, then the spec).
    let svc = |label: &str, ip: &str, affinity: &str| {
        json!({"metadata": {"name": "s", "namespace": "d", "labels": {"a": label}},
            "spec": {"clusterIP": ip, "sessionAffinity": affinity, "ports": [{"port": 80}]}})
    };
    let bad_label = "-x-";
    let label_msg = "Invalid value: \"-x-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    assert_eq!(
        update_causes(
            svc(bad_label, "10.96.0.6", "Sticky"),
            svc("ok", "10.96.0.5", "None")
        ),
        vec![
            format!("metadata.labels: {label_msg}"),
            "spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.6\"}: may not change once set"
                .to_string(),
            format!("metadata.labels: {label_msg}"),
            "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\""
                .to_string(),
        ]
    );
}

#[test]
fn health_check_node_port_rules() {
    let lb = |etp: &str, hc: Option<i32>| {
        let mut spec = json!({"type": "LoadBalancer", "externalTrafficPolicy": etp,
            "ports": [{"port": 80}]});
        if let Some(hc) = hc {
            spec["healthCheckNodePort"] = json!(hc);
        }
        object(spec)
    };
    // The allocator fills it in before validation; without it, it is required.
    assert_eq!(
        create(lb("Local", None)),
        invalid("spec.healthCheckNodePort: Required value")
    );
    assert_eq!(create(lb("Local", Some(30100))), "");
    assert_eq!(
        create(lb("Local", Some(70000))),
        invalid(
            "spec.healthCheckNodePort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        )
    );
    assert_eq!(
        create(lb("Cluster", Some(30100))),
        invalid(
            "spec.healthCheckNodePort: Invalid value: 30100: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
        )
    );
    // Dropping it on an update that keeps needing it: immutable, then required.
    assert_eq!(
        update_causes(lb("Local", None), lb("Local", Some(30100))),
        vec![
            "spec.healthCheckNodePort: Forbidden: field is immutable".to_string(),
            "spec.healthCheckNodePort: Required value".to_string(),
        ]
    );
}

#[test]
fn ip_mode_defaults_to_vip_where_an_ip_is_set() {
    let with_ingress = |ty: &str, ingress: Value| {
        let mut v = object(json!({"type": ty, "ports": [{"port": 80}]}));
        v["status"] = json!({"loadBalancer": {"ingress": ingress}});
        decoded(v)["status"]["loadBalancer"]["ingress"].clone()
    };
    assert_eq!(
        with_ingress(
            "LoadBalancer",
            json!([{"ip": "10.0.0.1"}, {"hostname": "lb.example.com"}, {"ip": "10.0.0.2", "ipMode": "Proxy"}])
        ),
        json!([{"ip": "10.0.0.1", "ipMode": "VIP"}, {"hostname": "lb.example.com"}, {"ip": "10.0.0.2", "ipMode": "Proxy"}])
    );
    // Only LoadBalancer services are defaulted (and validation forbids the others).
    assert_eq!(
        with_ingress("NodePort", json!([{"ip": "10.0.0.1"}])),
        json!([{"ip": "10.0.0.1"}])
    );
}

#[test]
fn ip_mode_is_required_with_an_ip() {
    // Reachable when the stored spec is a LoadBalancer but the request's was not (the
    // status strategy keeps the stored spec, after defaulting saw the request's).
    let info = by_kind("v1", "Service").unwrap();
    let mut new = decoded(object(
        json!({"type": "LoadBalancer", "ports": [{"port": 80}]}),
    ));
    let old = new.clone();
    new["status"] = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}});
    assert_eq!(
        crate::validation::validate_status_update(info, &new, &old)
            .unwrap_err()
            .message,
        invalid(
            "status.loadBalancer.ingress[0].ipMode: Required value: must be specified when `ip` is set"
        )
    );
}

#[test]
fn load_balancers_may_not_expose_the_kubelet_port() {
    let svc = |ty: &str| {
        object(
            json!({"type": ty, "ports": [{"name": "a", "port": 80}, {"name": "k", "port": 10250}]}),
        )
    };
    assert_eq!(
        create(svc("LoadBalancer")),
        invalid(
            "spec.ports[1]: Invalid value: 10250: may not expose port 10250 externally since it is used by kubelet"
        )
    );
    assert_eq!(create(svc("NodePort")), "");
}

#[test]
fn load_balancer_class_is_checked_in_both_update_parts() {
    let svc = |ty: &str, class: &str| {
        object(json!({"type": ty, "loadBalancerClass": class, "ports": [{"port": 80}]}))
    };
    // Changed to ClusterIP with a new class (so not dropped): forbidden in the update part
    // and again in ValidateService.
    assert_eq!(
        update_causes(svc("ClusterIP", "b.io/y"), svc("LoadBalancer", "a.io/x")),
        vec![
            "spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"
                .to_string(),
            "spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"
                .to_string(),
        ]
    );
}
