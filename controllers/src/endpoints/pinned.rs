//! The Endpoints and EndpointSlice objects the two controllers write for one service, pinned
//! field for field (volatile fields aside), so that a change of how they are built cannot
//! change what they write.

use serde_json::{Value, json};

use crate::endpoints::tests::{running, set_status, web_pod, web_service};
use crate::testutil::{cluster, create, eventually, get, list, strip_volatile_metadata};

const EXPECTED_ENDPOINTS: &str = r#"{"apiVersion":"v1","kind":"Endpoints","metadata":{"annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2024-01-01T00:00:00Z"},"labels":{"team":"a"},"name":"web","namespace":"default"},"subsets":[{"addresses":[{"ip":"10.244.0.2","nodeName":"node-a","targetRef":{"kind":"Pod","name":"a","namespace":"default"}},{"hostname":"host-h","ip":"10.244.0.4","nodeName":"node-a","targetRef":{"kind":"Pod","name":"h","namespace":"default"}}],"notReadyAddresses":[{"ip":"10.244.0.3","nodeName":"node-a","targetRef":{"kind":"Pod","name":"b","namespace":"default"}}],"ports":[{"appProtocol":"http","name":"http","port":8080,"protocol":"TCP"},{"name":"metrics","port":9091,"protocol":"TCP"}]}],"endpoints":null}"#;

const EXPECTED_SLICE: &str = r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","addressType":"IPv4","endpoints":[{"addresses":["10.244.0.2"],"conditions":{"ready":true,"serving":true,"terminating":false},"nodeName":"node-a","targetRef":{"kind":"Pod","name":"a","namespace":"default"},"zone":"z1"},{"addresses":["10.244.0.3"],"conditions":{"ready":false,"serving":false,"terminating":false},"nodeName":"node-a","targetRef":{"kind":"Pod","name":"b","namespace":"default"},"zone":"z1"},{"addresses":["10.244.0.4"],"conditions":{"ready":true,"serving":true,"terminating":false},"hostname":"host-h","nodeName":"node-a","targetRef":{"kind":"Pod","name":"h","namespace":"default"},"zone":"z1"}],"metadata":{"annotations":{"endpoints.kubernetes.io/last-change-trigger-time":"2024-01-01T00:00:00Z"},"generateName":"web-","labels":{"endpointslice.kubernetes.io/managed-by":"endpointslice-controller.k8s.io","kubernetes.io/service-name":"web","team":"a"},"namespace":"default","ownerReferences":[{"apiVersion":"v1","blockOwnerDeletion":true,"controller":true,"kind":"Service","name":"web"}]},"ports":[{"appProtocol":"http","name":"http","port":8080,"protocol":"TCP"},{"name":"metrics","port":9091,"protocol":"TCP"}],"subsets":null}"#;

/// The object without what the store or the clock sets.
fn stable(obj: &Value) -> Value {
    let mut obj = obj.clone();
    strip_volatile_metadata(&mut obj);
    let strip = |list: &mut Value| {
        for a in list.as_array_mut().into_iter().flatten() {
            a["targetRef"].as_object_mut().unwrap().remove("uid");
        }
    };
    for s in obj["subsets"].as_array_mut().into_iter().flatten() {
        strip(&mut s["addresses"]);
        strip(&mut s["notReadyAddresses"]);
    }
    strip(&mut obj["endpoints"]);
    obj
}

#[tokio::test(start_paused = true)]
async fn written_endpoints_and_slices_are_pinned() {
    let run = |r: apiserver::Registry, s: tokio_util::sync::CancellationToken| {
        let c = cluster(&r);
        Box::pin(async move {
            tokio::join!(
                crate::endpoints::run(c.clone(), s.clone()),
                crate::endpointslice::run(c, s)
            );
        }) as futures::future::BoxFuture<'static, ()>
    };
    let (registry, stop) = running(run).await;
    create(
        &registry,
        "nodes",
        "",
        json!({"metadata": {"name": "node-a", "labels": {"topology.kubernetes.io/zone": "z1"}}}),
    )
    .await;
    web_pod(&registry, "a", "10.244.0.2", true).await;
    web_pod(&registry, "b", "10.244.0.3", false).await;
    // A pod with a hostname in the service's subdomain: its addresses carry the hostname.
    let with_hostname = json!({"metadata": {"name": "h", "labels": {"app": "web"}},
        "spec": {"nodeName": "node-a", "hostname": "host-h", "subdomain": "web",
                 "containers": [{"name": "web", "image": "nginx",
                                 "ports": [{"name": "http", "containerPort": 8080}]}]}});
    create(&registry, "pods", "default", with_hostname).await;
    set_status(&registry, "h", "10.244.0.4", true).await;
    let mut svc = web_service(json!({}));
    svc["spec"]["ports"][0]["appProtocol"] = json!("http");
    create(&registry, "services", "default", svc).await;
    let slices = || -> Vec<Value> {
        list(&registry, "endpointslices", "default")
            .into_iter()
            .filter(|s| s["endpoints"].as_array().is_some_and(|e| e.len() == 3))
            .map(|s| stable(&s))
            .collect()
    };
    eventually("endpoints and a slice", || {
        get(&registry, "endpoints", "default", "web").is_some_and(|e| !e["subsets"].is_null())
            && slices().len() == 1
    })
    .await;
    let ep = stable(&get(&registry, "endpoints", "default", "web").unwrap());
    let slice = slices().remove(0);
    // Byte for byte what the controllers wrote when they still built JSON by hand.
    assert_eq!(serde_json::to_string(&ep).unwrap(), EXPECTED_ENDPOINTS);
    assert_eq!(serde_json::to_string(&slice).unwrap(), EXPECTED_SLICE);
    stop.cancel();
}
