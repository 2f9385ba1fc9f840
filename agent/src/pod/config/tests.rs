use super::*;
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
    ObjectFieldSelector, PodSpec, ResourceFieldSelector, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

#[derive(Default)]
struct Fake {
    cms: HashMap<String, ConfigMap>,
    services: Vec<k8s_openapi::api::core::v1::Service>,
}

impl Objects for Fake {
    fn config_map<'a>(
        &'a self,
        _ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, String>> {
        Box::pin(async move { Ok(self.cms.get(name).cloned()) })
    }
    fn secret<'a>(
        &'a self,
        _ns: &'a str,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, String>> {
        Box::pin(async move { Ok(None) })
    }
    fn services<'a>(
        &'a self,
        _ns: &'a str,
    ) -> BoxFuture<'a, Result<Vec<k8s_openapi::api::core::v1::Service>, String>> {
        Box::pin(async move { Ok(self.services.clone()) })
    }
}

fn node() -> NodeFacts {
    NodeFacts {
        host_ip: "10.0.0.1".parse().unwrap(),
        node_name: "n1".into(),
        cpu_milli: 2000,
        memory: 1 << 30,
        storage: 1 << 34,
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
