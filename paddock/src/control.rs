//! How the binary runs the controllers in process: over the API server's registry (its
//! `api::cluster::Cluster` implementation) with the cluster CA as the CSR signer's authority,
//! under leader election; the service account controllers with the CA and the server's token
//! issuer.

use std::sync::Arc;

use apiserver::tls::ClusterCa;
use controllers::csrsigning::Authority;

/// The cluster CA as the signer's authority.
pub(crate) fn authority(ca: Arc<ClusterCa>) -> Arc<dyn Authority> {
    Arc::new(move |params, key: &rcgen::SubjectPublicKeyInfo, ttl| {
        ca.sign(params, key, ttl).map_err(|e| e.to_string())
    })
}

/// The service account controllers' settings: the cluster CA and the server's token issuer
/// as the legacy token signer.
fn service_accounts(server: &apiserver::RunningServer) -> controllers::serviceaccount::Config {
    let issuer = server.token_issuer();
    controllers::serviceaccount::Config {
        root_ca: server.cluster_ca().cert_pem().to_string(),
        signer: Arc::new(move |ns: &str, name: &str, uid: &str, secret: &str| {
            issuer
                .sign_legacy(ns, name, uid, secret)
                .map_err(|e| e.to_string())
        }),
    }
}

/// The CSR approver's access reviews: the API server's authorizer, as a SubjectAccessReview
/// would ask it.
fn csr_approval(server: &apiserver::RunningServer) -> controllers::csrapproving::Config {
    let registry = server.registry();
    controllers::csrapproving::Config(Arc::new(
        move |who: &controllers::csrapproving::Requester, subresource: &str| {
            let user = apiserver::user::UserInfo {
                name: who.user.clone(),
                uid: who.uid.clone(),
                groups: who.groups.clone(),
                extra: who.extra.clone(),
            };
            let attrs = apiserver::authz::Attributes {
                verb: "create".into(),
                resource_request: true,
                api_group: "certificates.k8s.io".into(),
                api_version: "*".into(),
                resource: "certificatesigningrequests".into(),
                subresource: subresource.into(),
                ..Default::default()
            };
            registry.rbac().authorize(&user, &attrs).allowed
        },
    ))
}

/// Starts the controllers over `server`'s registry, under leader election as
/// `<hostname>_<uuid>`. With the serviceaccount controller making every namespace's
/// `default` account, the ServiceAccount admission plugin is turned on.
pub(crate) fn start(
    server: &apiserver::RunningServer,
    mut options: controllers::Options,
) -> controllers::Controllers {
    options.service_accounts = Some(service_accounts(server));
    let mut hpa =
        controllers::hpa::Config::new(Arc::new(ResourceMetrics(server.resource_metrics())));
    if !options.hpa_sync_period.is_zero() {
        hpa.sync_period = options.hpa_sync_period;
    }
    options.hpa = Some(hpa);
    options.csr_approval = Some(csr_approval(server));
    server.registry().set_service_account_admission(true);
    controllers::start(
        Arc::new(server.registry()),
        authority(server.cluster_ca()),
        controllers::leader::identity(),
        options,
    )
}

/// The API server's resource metrics as the HorizontalPodAutoscaler controller reads them
/// (in-process, rather than through `metrics.k8s.io`): CPU in millicores, memory in
/// milli-bytes, as the upstream metrics client's `MilliValue`.
#[derive(Debug)]
struct ResourceMetrics(Arc<apiserver::resource_metrics::MetricsSource>);

impl controllers::hpa::MetricsSource for ResourceMetrics {
    fn pod_metrics(&self, namespace: &str, name: &str) -> Option<controllers::hpa::PodMetric> {
        let m = self.0.pod_metrics(namespace, name)?;
        Some(controllers::hpa::PodMetric {
            timestamp_ms: m.timestamp_ms,
            window_ms: m.window_ms,
            containers: m
                .containers
                .into_iter()
                .map(|(name, u)| controllers::hpa::ContainerUsage {
                    name,
                    // Quantity's MilliValue rounds up.
                    cpu_milli: i64::try_from(u.cpu_nanocores.div_ceil(1_000_000))
                        .unwrap_or(i64::MAX),
                    memory_milli: i64::try_from(u.memory)
                        .unwrap_or(i64::MAX / 1000)
                        .saturating_mul(1000),
                })
                .collect(),
        })
    }
}
