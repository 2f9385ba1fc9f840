use super::*;
use crate::pod::port_error::PortError;
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
    ObjectFieldSelector, PodSpec, ResourceFieldSelector, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

#[derive(Default)]
struct Fake {
    cms: HashMap<String, ConfigMap>,
    services: Vec<k8s_openapi::api::core::v1::Service>,
    /// Listing services fails with this.
    services_error: Option<String>,
}

impl Objects for Fake {
    fn runtime_class<'a>(
        &'a self,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Option<k8s_openapi::api::node::v1::RuntimeClass>, PortError>> {
        Box::pin(async { Ok(None) })
    }
    fn config_map<'a>(
        &'a self,
        _ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, PortError>> {
        Box::pin(async move { Ok(self.cms.get(name).cloned()) })
    }
    fn secret<'a>(
        &'a self,
        _ns: &'a str,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, PortError>> {
        Box::pin(async move { Ok(None) })
    }
    fn services<'a>(
        &'a self,
        ns: &'a str,
    ) -> BoxFuture<'a, Result<Vec<k8s_openapi::api::core::v1::Service>, PortError>> {
        Box::pin(async move {
            if let Some(e) = &self.services_error {
                return Err(PortError::other(e.clone()));
            }
            Ok(self
                .services
                .iter()
                .filter(|s| s.metadata.namespace.as_deref() == Some(ns))
                .cloned()
                .collect())
        })
    }
}

fn node() -> NodeFacts {
    NodeFacts {
        host_ip: "10.0.0.1".parse().unwrap(),
        node_name: "n1".into(),
        cpu_milli: 2000,
        memory: 1 << 30,
        storage: 1 << 34,
        storage_root: "/nonexistent/storage".into(),
        apparmor: false,
    }
}

fn var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn pod(c: Container) -> Pod {
    Pod {
        metadata: kube::api::ObjectMeta {
            name: Some("p".into()),
            namespace: Some("ns".into()),
            uid: Some("u1".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![c],
            node_name: Some("n1".into()),
            ..Default::default()
        }),
        status: None,
    }
}

#[tokio::test]
async fn env_sources_order_and_expansion() {
    let mut fake = Fake::default();
    let mut data = BTreeMap::new();
    data.insert("A".to_string(), "from-cm".to_string());
    data.insert("1bad".to_string(), "x".to_string());
    fake.cms.insert(
        "cm".into(),
        ConfigMap {
            data: Some(data),
            ..Default::default()
        },
    );
    let c = Container {
        name: "c".into(),
        command: Some(vec!["echo".into(), "$(B)".into(), "$(NOPE)".into()]),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: "cm".into(),
                optional: None,
            }),
            ..Default::default()
        }]),
        env: Some(vec![
            var("B", "b-$(A)"),
            EnvVar {
                name: "POD".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            EnvVar {
                name: "MEM".into(),
                value_from: Some(EnvVarSource {
                    resource_field_ref: Some(ResourceFieldSelector {
                        resource: "limits.memory".into(),
                        divisor: Some(Quantity("1Mi".into())),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            EnvVar {
                name: "CPU".into(),
                value_from: Some(EnvVarSource {
                    resource_field_ref: Some(ResourceFieldSelector {
                        resource: "requests.cpu".into(),
                        divisor: Some(Quantity("1m".into())),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ]),
        resources: Some(ResourceRequirements {
            requests: Some([("cpu".to_string(), Quantity("250m".into()))].into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = pod(c.clone());
    let (cfg, warnings) = container_config(&fake, &p, &c, 0, "10.244.0.5", &node())
        .await
        .unwrap();
    assert_eq!(
        cfg.env,
        vec![
            ("A".to_string(), "from-cm".to_string()),
            ("B".to_string(), "b-from-cm".to_string()),
            ("POD".to_string(), "p".to_string()),
            ("MEM".to_string(), "1024".to_string()),
            ("CPU".to_string(), "250".to_string()),
        ]
    );
    assert_eq!(cfg.argv, ["echo", "b-from-cm", "$(NOPE)"]);
    assert_eq!(warnings.len(), 1);
    assert_eq!(
        warnings[0].1,
        "Keys [1bad] from the EnvFrom configMap ns/cm were skipped since they are considered invalid environment variable names."
    );
}

#[tokio::test]
async fn missing_references_are_config_errors() {
    let fake = Fake::default();
    let mut c = Container {
        name: "c".into(),
        command: Some(vec!["true".into()]),
        env: Some(vec![EnvVar {
            name: "X".into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: "missing".into(),
                    key: "k".into(),
                    optional: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let p = pod(c.clone());
    let e = container_config(&fake, &p, &c, 0, "", &node())
        .await
        .unwrap_err();
    assert_eq!(e, "configmap \"missing\" not found");
    c.env = None;
    c.command = None;
    let e = container_config(&fake, &p, &c, 0, "", &node())
        .await
        .unwrap_err();
    assert!(e.contains("has no command"), "{e}");
}

#[tokio::test]
async fn service_links_like_docker() {
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "my-db", "namespace": "ns"},
        "spec": {"clusterIP": "10.96.0.7", "ports": [
            {"name": "sql", "port": 5432, "protocol": "TCP"},
            {"name": "metrics", "port": 9187, "protocol": "TCP"}]},
    }))
    .unwrap();
    let fake = Fake {
        services: vec![svc],
        ..Default::default()
    };
    let c = Container {
        name: "c".into(),
        command: Some(vec!["true".into()]),
        env: Some(vec![
            var("URL", "$(MY_DB_SERVICE_HOST):$(MY_DB_SERVICE_PORT)"),
            var("MY_DB_PORT", "mine"),
        ]),
        ..Default::default()
    };
    let p = pod(c.clone());
    let (cfg, _) = container_config(&fake, &p, &c, 0, "", &node())
        .await
        .unwrap();
    let get = |k: &str| {
        cfg.env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("URL"), Some("10.96.0.7:5432"));
    assert_eq!(get("MY_DB_SERVICE_PORT_METRICS"), Some("9187"));
    assert_eq!(get("MY_DB_PORT"), Some("mine"));
    assert_eq!(get("MY_DB_PORT_9187_TCP"), Some("tcp://10.96.0.7:9187"));
    assert_eq!(get("MY_DB_PORT_5432_TCP_ADDR"), Some("10.96.0.7"));
    assert_eq!(get("MY_DB_PORT_5432_TCP_PROTO"), Some("tcp"));
}

/// A Service `name` in `ns` with `ports` as (name, port, protocol).
fn svc(name: &str, ns: &str, ip: &str, ports: &[(&str, i32, &str)]) -> Service {
    let ports: Vec<serde_json::Value> = ports
        .iter()
        .map(|(n, p, proto)| serde_json::json!({"name": n, "port": p, "protocol": proto}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"bar": "baz"}, "clusterIP": ip, "ports": ports},
    }))
    .unwrap()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Upstream `envvars_test.go` `TestFromServices`, same services, same expected list.
#[test]
fn from_services_as_upstream() {
    let services = vec![
        svc("foo-bar", "ns", "1.2.3.4", &[("", 8080, "TCP")]),
        svc(
            "abc-123",
            "ns",
            "5.6.7.8",
            &[("u-d-p", 8081, "UDP"), ("t-c-p", 8081, "TCP")],
        ),
        svc(
            "q-u-u-x",
            "ns",
            "9.8.7.6",
            &[("", 8082, "TCP"), ("8083", 8083, "TCP")],
        ),
        svc("svrc-clusterip-none", "ns", "None", &[("", 8082, "TCP")]),
        svc("svrc-clusterip-empty", "ns", "", &[("", 8082, "TCP")]),
        svc(
            "super-ipv6",
            "ns",
            "2001:DB8::",
            &[("u-d-p", 8084, "UDP"), ("t-c-p", 8084, "TCP")],
        ),
        svc("sctp-1", "ns", "1.2.3.4", &[("", 777, "SCTP")]),
    ];
    let expected = pairs(&[
        ("FOO_BAR_SERVICE_HOST", "1.2.3.4"),
        ("FOO_BAR_SERVICE_PORT", "8080"),
        ("FOO_BAR_PORT", "tcp://1.2.3.4:8080"),
        ("FOO_BAR_PORT_8080_TCP", "tcp://1.2.3.4:8080"),
        ("FOO_BAR_PORT_8080_TCP_PROTO", "tcp"),
        ("FOO_BAR_PORT_8080_TCP_PORT", "8080"),
        ("FOO_BAR_PORT_8080_TCP_ADDR", "1.2.3.4"),
        ("ABC_123_SERVICE_HOST", "5.6.7.8"),
        ("ABC_123_SERVICE_PORT", "8081"),
        ("ABC_123_SERVICE_PORT_U_D_P", "8081"),
        ("ABC_123_SERVICE_PORT_T_C_P", "8081"),
        ("ABC_123_PORT", "udp://5.6.7.8:8081"),
        ("ABC_123_PORT_8081_UDP", "udp://5.6.7.8:8081"),
        ("ABC_123_PORT_8081_UDP_PROTO", "udp"),
        ("ABC_123_PORT_8081_UDP_PORT", "8081"),
        ("ABC_123_PORT_8081_UDP_ADDR", "5.6.7.8"),
        ("ABC_123_PORT_8081_TCP", "tcp://5.6.7.8:8081"),
        ("ABC_123_PORT_8081_TCP_PROTO", "tcp"),
        ("ABC_123_PORT_8081_TCP_PORT", "8081"),
        ("ABC_123_PORT_8081_TCP_ADDR", "5.6.7.8"),
        ("Q_U_U_X_SERVICE_HOST", "9.8.7.6"),
        ("Q_U_U_X_SERVICE_PORT", "8082"),
        ("Q_U_U_X_SERVICE_PORT_8083", "8083"),
        ("Q_U_U_X_PORT", "tcp://9.8.7.6:8082"),
        ("Q_U_U_X_PORT_8082_TCP", "tcp://9.8.7.6:8082"),
        ("Q_U_U_X_PORT_8082_TCP_PROTO", "tcp"),
        ("Q_U_U_X_PORT_8082_TCP_PORT", "8082"),
        ("Q_U_U_X_PORT_8082_TCP_ADDR", "9.8.7.6"),
        ("Q_U_U_X_PORT_8083_TCP", "tcp://9.8.7.6:8083"),
        ("Q_U_U_X_PORT_8083_TCP_PROTO", "tcp"),
        ("Q_U_U_X_PORT_8083_TCP_PORT", "8083"),
        ("Q_U_U_X_PORT_8083_TCP_ADDR", "9.8.7.6"),
        ("SUPER_IPV6_SERVICE_HOST", "2001:DB8::"),
        ("SUPER_IPV6_SERVICE_PORT", "8084"),
        ("SUPER_IPV6_SERVICE_PORT_U_D_P", "8084"),
        ("SUPER_IPV6_SERVICE_PORT_T_C_P", "8084"),
        ("SUPER_IPV6_PORT", "udp://[2001:DB8::]:8084"),
        ("SUPER_IPV6_PORT_8084_UDP", "udp://[2001:DB8::]:8084"),
        ("SUPER_IPV6_PORT_8084_UDP_PROTO", "udp"),
        ("SUPER_IPV6_PORT_8084_UDP_PORT", "8084"),
        ("SUPER_IPV6_PORT_8084_UDP_ADDR", "2001:DB8::"),
        ("SUPER_IPV6_PORT_8084_TCP", "tcp://[2001:DB8::]:8084"),
        ("SUPER_IPV6_PORT_8084_TCP_PROTO", "tcp"),
        ("SUPER_IPV6_PORT_8084_TCP_PORT", "8084"),
        ("SUPER_IPV6_PORT_8084_TCP_ADDR", "2001:DB8::"),
        ("SCTP_1_SERVICE_HOST", "1.2.3.4"),
        ("SCTP_1_SERVICE_PORT", "777"),
        ("SCTP_1_PORT", "sctp://1.2.3.4:777"),
        ("SCTP_1_PORT_777_SCTP", "sctp://1.2.3.4:777"),
        ("SCTP_1_PORT_777_SCTP_PROTO", "sctp"),
        ("SCTP_1_PORT_777_SCTP_PORT", "777"),
        ("SCTP_1_PORT_777_SCTP_ADDR", "1.2.3.4"),
    ]);
    assert_eq!(from_services(&services), expected);
}

/// The services of upstream `TestMakeEnvironmentVariables` (`buildService`): duplicates by
/// name without a ClusterIP are skipped before they can shadow the real one.
fn kubelet_test_services() -> Vec<Service> {
    let b = |name: &str, ns: &str, ip: &str, port: i32| svc(name, ns, ip, &[("", port, "TCP")]);
    vec![
        b("kubernetes", "default", "1.2.3.1", 8081),
        b("test", "test1", "1.2.3.3", 8083),
        b("kubernetes", "test2", "1.2.3.4", 8084),
        b("test", "test2", "1.2.3.5", 8085),
        b("test", "test2", "None", 8085),
        b("test", "test2", "", 8085),
        b("not-special", "default", "1.2.3.8", 8088),
        b("not-special", "default", "None", 8088),
        b("not-special", "default", "", 8088),
    ]
}

/// The seven variables of a one-port TCP service.
fn link_vars(prefix: &str, ip: &str, port: u16) -> Vec<(String, String)> {
    let url = format!("tcp://{ip}:{port}");
    let pp = format!("{prefix}_PORT_{port}_TCP");
    vec![
        (format!("{prefix}_SERVICE_HOST"), ip.to_string()),
        (format!("{prefix}_SERVICE_PORT"), port.to_string()),
        (format!("{prefix}_PORT"), url.clone()),
        (pp.clone(), url),
        (format!("{pp}_PROTO"), "tcp".to_string()),
        (format!("{pp}_PORT"), port.to_string()),
        (format!("{pp}_ADDR"), ip.to_string()),
    ]
}

async fn env_in(
    fake: &Fake,
    ns: &str,
    links: Option<bool>,
    env: Vec<EnvVar>,
) -> Vec<(String, String)> {
    let c = Container {
        name: "c".into(),
        command: Some(vec!["true".into()]),
        env: Some(env),
        ..Default::default()
    };
    let mut p = pod(c.clone());
    p.metadata.namespace = Some(ns.into());
    p.spec.as_mut().unwrap().enable_service_links = links;
    let (mut env, _) = environment(fake, &p, &c, "", &node()).await.unwrap();
    env.sort();
    env
}

fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}

/// Upstream `TestMakeEnvironmentVariables`, its service cases: which services each
/// namespace sees with `enableServiceLinks` on and off.
#[tokio::test]
async fn service_env_per_namespace_as_kubelet() {
    let fake = Fake {
        services: kubelet_test_services(),
        ..Default::default()
    };
    let foo = |v: &str| vec![var("FOO", v)];
    let with = |extra: &[(&str, &str)], groups: &[Vec<(String, String)>]| {
        let mut v = pairs(extra);
        for g in groups {
            v.extend(g.iter().cloned());
        }
        sorted(v)
    };
    let master = link_vars("KUBERNETES", "1.2.3.1", 8081);
    // "api server = N; kubelet = Y"
    assert_eq!(
        env_in(&fake, "test1", Some(false), foo("BAZ")).await,
        with(&[("FOO", "BAZ")], std::slice::from_ref(&master))
    );
    // "api server = N; kubelet = Y; service env vars"
    assert_eq!(
        env_in(&fake, "test1", Some(true), foo("BAZ")).await,
        with(
            &[("FOO", "BAZ")],
            &[link_vars("TEST", "1.2.3.3", 8083), master.clone()]
        )
    );
    // enableServiceLinks unset defaults to true.
    assert_eq!(
        env_in(&fake, "test1", None, foo("BAZ")).await,
        with(
            &[("FOO", "BAZ")],
            &[link_vars("TEST", "1.2.3.3", 8083), master.clone()]
        )
    );
    // "master service in pod ns"
    assert_eq!(
        env_in(&fake, "test2", Some(false), foo("ZAP")).await,
        with(&[("FOO", "ZAP")], std::slice::from_ref(&master))
    );
    // "master service in pod ns, service env vars": the namespace's own `kubernetes` wins.
    assert_eq!(
        env_in(&fake, "test2", Some(true), foo("ZAP")).await,
        with(
            &[("FOO", "ZAP")],
            &[
                link_vars("TEST", "1.2.3.5", 8085),
                link_vars("KUBERNETES", "1.2.3.4", 8084)
            ]
        )
    );
    // "pod in master service ns"
    assert_eq!(
        env_in(&fake, "default", Some(false), vec![]).await,
        with(&[], std::slice::from_ref(&master))
    );
    // "pod in master service ns, service env vars"
    assert_eq!(
        env_in(&fake, "default", Some(true), vec![]).await,
        with(
            &[],
            &[link_vars("NOT_SPECIAL", "1.2.3.8", 8088), master.clone()]
        )
    );
}

/// A headless `kubernetes` service in the pod's namespace does not hide the default one
/// (the kubelet skips services without a ClusterIP before choosing).
#[tokio::test]
async fn headless_namespace_kubernetes_does_not_hide_the_master_service() {
    let mut services = kubelet_test_services();
    services.push(svc("kubernetes", "test3", "None", &[("", 9, "TCP")]));
    let fake = Fake {
        services,
        ..Default::default()
    };
    assert_eq!(
        env_in(&fake, "test3", Some(true), vec![]).await,
        sorted(link_vars("KUBERNETES", "1.2.3.1", 8081))
    );
}

/// Upstream "api server = Y, kubelet = Y" and "env expansion, service env vars": the
/// container's own values win over service variables, and `$(VAR)` sees service variables.
#[tokio::test]
async fn container_env_wins_and_expands_service_vars() {
    let fake = Fake {
        services: kubelet_test_services(),
        ..Default::default()
    };
    let env = env_in(
        &fake,
        "test1",
        Some(true),
        vec![
            var("FOO", "BAR"),
            var("TEST_SERVICE_HOST", "9.9.9.9"),
            var(
                "SERVICE_VAR_TEST",
                "$(TEST_SERVICE_HOST):$(TEST_SERVICE_PORT)",
            ),
            var("MASTER", "$(KUBERNETES_PORT)"),
            var("TEST_UNDEFINED", "$(UNDEFINED_VAR)"),
        ],
    )
    .await;
    let get = |k: &str| {
        env.iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        get("TEST_SERVICE_HOST"),
        ["9.9.9.9"],
        "one value, the container's"
    );
    assert_eq!(get("SERVICE_VAR_TEST"), ["9.9.9.9:8083"]);
    assert_eq!(get("MASTER"), ["tcp://1.2.3.1:8081"]);
    assert_eq!(get("TEST_UNDEFINED"), ["$(UNDEFINED_VAR)"]);
    assert_eq!(get("TEST_PORT_8083_TCP_ADDR"), ["1.2.3.3"]);
    // 5 own + 7 + 7 service variables, one of them overridden.
    assert_eq!(env.len(), 5 + 14 - 1);
}

#[tokio::test]
async fn a_failed_service_list_is_the_kubelets_config_error() {
    let fake = Fake {
        services_error: Some("connection refused".into()),
        ..Default::default()
    };
    let c = Container {
        name: "c".into(),
        command: Some(vec!["true".into()]),
        ..Default::default()
    };
    let e = container_config(&fake, &pod(c.clone()), &c, 0, "", &node())
        .await
        .unwrap_err();
    assert_eq!(e, "failed to list services when setting up env vars");
}

#[test]
fn sub_path_exprs_are_expanded_and_checked_as_the_kubelet_does() {
    let env = vec![
        ("POD".to_string(), "web-0".to_string()),
        ("EMPTY".to_string(), String::new()),
        ("UP".to_string(), "..".to_string()),
    ];
    assert_eq!(
        super::expand_sub_path_expr("logs/$(POD)", &env).as_deref(),
        Ok("logs/web-0")
    );
    assert_eq!(
        super::expand_sub_path_expr("$(NOPE)/$(EMPTY)/$(POD)", &env),
        Err("missing value for EMPTY, NOPE".to_string())
    );
    let up = super::expand_sub_path_expr("$(UP)/x", &env).expect("expanded");
    assert_eq!(
        super::check_sub_path(&up),
        Err("unable to provision SubPath `../x`: must not contain '..'".to_string())
    );
    assert_eq!(
        super::check_sub_path("/etc"),
        Err("error SubPath `/etc` must not be an absolute path".to_string())
    );
    assert_eq!(super::check_sub_path("a..b/c"), Ok(()));
}

#[test]
fn the_default_runtime_applies_to_pods_without_a_handler_and_runc_needs_images() {
    assert_eq!(effective_handler("", "host", true), Ok("host".into()));
    assert_eq!(effective_handler("", "runc", true), Ok("runc".into()));
    assert_eq!(effective_handler("host", "runc", false), Ok("host".into()));
    assert_eq!(effective_handler("runc", "host", true), Ok("runc".into()));
    assert_eq!(
        effective_handler("runc", "host", false),
        Err(r#"rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for "runc" is configured"#.into())
    );
}
