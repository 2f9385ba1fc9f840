//! The CSR approving controller (upstream `pkg/controller/certificates/approver/sarapprove.go`):
//! approves kubelet client certificate requests (signer
//! `kubernetes.io/kube-apiserver-client-kubelet`, a subject and usages that pass
//! `ValidateKubeletClientCSR`) when a SubjectAccessReview says their requester may `create`
//! `certificatesigningrequests/selfnodeclient` (a node renewing its own certificate: the
//! requester is the certificate's common name) or `certificatesigningrequests/nodeclient`
//! (anyone else, e.g. a bootstrap token joining a node). The condition is `Approved`, reason
//! `AutoApproved`, upstream's message. A request it does not recognize, or whose requester
//! is not allowed, is left alone for a human (`kubectl certificate approve`).
//!
//! A paddock extension (upstream leaves kubelet serving certificates to a human or a
//! third-party approver): a `kubernetes.io/kubelet-serving` request is approved when its
//! requester is the node it names (user `system:node:<name>` in `system:nodes`, the
//! request's common name), it passes `ValidateKubeletServingCSR`, its DNS names are only the
//! node's name and none of its IP addresses is another Node's ([`serving_approval`]). A node
//! agent without administrator credentials gets its serving certificate that way.
//!
//! The access review goes through an [`AccessReviewer`] (the binary's: the API server's
//! authorizer). Start at [`Controller::handle`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api::certificates;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, Subresource};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::Change;
use crate::{Error, typed};

const WORKERS: usize = 1;

/// Who asks (a SubjectAccessReview's user fields, from the request's `spec`).
#[derive(Debug, Clone, Default)]
pub struct Requester {
    /// `spec.username`.
    pub user: String,
    /// `spec.uid`.
    pub uid: String,
    /// `spec.groups`.
    pub groups: Vec<String>,
    /// `spec.extra`.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Answers a SubjectAccessReview: may `who` `create` `certificatesigningrequests/<subresource>`
/// in group `certificates.k8s.io`?
pub trait AccessReviewer: Send + Sync {
    /// The review's `status.allowed`.
    fn may_create_csr_subresource(&self, who: &Requester, subresource: &str) -> bool;
}

impl<F> AccessReviewer for F
where
    F: Fn(&Requester, &str) -> bool + Send + Sync,
{
    fn may_create_csr_subresource(&self, who: &Requester, subresource: &str) -> bool {
        self(who, subresource)
    }
}

/// The approver's settings: its access reviewer.
#[derive(Clone)]
pub struct Config(pub Arc<dyn AccessReviewer>);

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").finish_non_exhaustive()
    }
}

/// Runs the approver until `shutdown` is cancelled.
pub async fn run(
    cluster: ClusterRef,
    reviewer: Arc<dyn AccessReviewer>,
    shutdown: CancellationToken,
) {
    let c = Arc::new(Controller {
        cluster: cluster.clone(),
        reviewer,
        queue: WorkQueue::controller_default(),
    });
    crate::queue::drive(
        &cluster,
        c,
        &[typed::info::<CertificateSigningRequest>()],
        WORKERS,
        &shutdown,
    )
    .await;
}

/// The controller's state.
pub struct Controller {
    cluster: ClusterRef,
    reviewer: Arc<dyn AccessReviewer>,
    queue: WorkQueue<String>,
}

fn decided_or_signed(csr: &CertificateSigningRequest) -> bool {
    let Some(status) = &csr.status else {
        return false;
    };
    status.certificate.as_ref().is_some_and(|c| !c.0.is_empty())
        || status.conditions.as_ref().is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Approved" || c.type_ == "Denied")
        })
}

/// A recognizer of upstream's list: the subresource reviewed and the approval message.
struct Recognizer {
    subresource: &'static str,
    message: &'static str,
    /// Whether the requester must be the certificate's common name.
    self_only: bool,
}

const RECOGNIZERS: [Recognizer; 2] = [
    Recognizer {
        subresource: "selfnodeclient",
        message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
        self_only: true,
    },
    Recognizer {
        subresource: "nodeclient",
        message: "Auto approving kubelet client certificate after SubjectAccessReview.",
        self_only: false,
    },
];

impl Controller {
    /// Upstream `sarApprover.handle`: the approval message when a recognizer's review allows
    /// the request, `None` otherwise.
    pub fn decide(&self, csr: &CertificateSigningRequest) -> Result<Option<&'static str>, Error> {
        if decided_or_signed(csr) {
            return Ok(None);
        }
        let name = csr.metadata.name.as_deref().unwrap_or("");
        let req = certificates::parse_csr(&csr.spec.request.0)
            .map_err(|e| Error::Signing(format!("unable to parse csr {name:?}: {e}")))?;
        let usages = csr.spec.usages.clone().unwrap_or_default();
        let is_node_client = csr.spec.signer_name
            == certificates::KUBE_APISERVER_CLIENT_KUBELET_SIGNER
            && certificates::validate_kubelet_client_csr(&req, &usages).is_ok();
        if !is_node_client {
            return Ok(None);
        }
        let who = Requester {
            user: csr.spec.username.clone().unwrap_or_default(),
            uid: csr.spec.uid.clone().unwrap_or_default(),
            groups: csr.spec.groups.clone().unwrap_or_default(),
            extra: csr
                .spec
                .extra
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        };
        let mut tried = Vec::new();
        for r in &RECOGNIZERS {
            if r.self_only && who.user != req.common_name {
                continue;
            }
            tried.push(r.subresource);
            if self
                .reviewer
                .may_create_csr_subresource(&who, r.subresource)
            {
                return Ok(Some(r.message));
            }
        }
        tracing::debug!(
            csr = name,
            ?tried,
            "recognized csr but subject access review was not approved"
        );
        Ok(None)
    }
}

/// The paddock serving-certificate rule (see the module): the approval message, or `None`.
pub fn serving_approval(
    csr: &CertificateSigningRequest,
    nodes: &[k8s_openapi::api::core::v1::Node],
) -> Option<&'static str> {
    if decided_or_signed(csr) || csr.spec.signer_name != certificates::KUBELET_SERVING_SIGNER {
        return None;
    }
    let req = certificates::parse_csr(&csr.spec.request.0).ok()?;
    let usages = csr.spec.usages.clone().unwrap_or_default();
    certificates::validate_kubelet_serving_csr(&req, &usages).ok()?;
    let user = csr.spec.username.as_deref().unwrap_or("");
    let node = user.strip_prefix("system:node:")?;
    let in_nodes = csr
        .spec
        .groups
        .as_ref()
        .is_some_and(|g| g.iter().any(|g| g == "system:nodes"));
    if !in_nodes || req.common_name != user || node.is_empty() {
        return None;
    }
    if req.dns_names.iter().any(|d| d != node) {
        return None;
    }
    let taken = nodes
        .iter()
        .filter(|n| n.metadata.name.as_deref() != Some(node))
        .flat_map(|n| n.status.iter().flat_map(|s| s.addresses.iter().flatten()))
        .filter_map(|a| a.address.parse::<std::net::IpAddr>().ok())
        .any(|ip| req.ip_addresses.contains(&ip));
    if taken {
        return None;
    }
    Some("Auto approving the serving certificate of the node that requested it.")
}

impl Reconciler for Controller {
    type Key = String;

    fn queue(&self) -> &WorkQueue<String> {
        &self.queue
    }

    fn observe(&self, change: Change) {
        if let Some(csr) = typed::upserted::<CertificateSigningRequest>(&change)
            && !decided_or_signed(&csr)
        {
            self.queue.add(csr.metadata.name.unwrap_or_default());
        }
    }

    async fn reconcile(self: Arc<Self>, name: String) -> Result<Option<Duration>, Error> {
        let Some(csr) = typed::get::<CertificateSigningRequest>(&self.cluster, "", &name).await?
        else {
            return Ok(None);
        };
        let message = match self.decide(&csr)? {
            Some(m) => m,
            None if csr.spec.signer_name == certificates::KUBELET_SERVING_SIGNER => {
                let nodes =
                    typed::list::<k8s_openapi::api::core::v1::Node>(&self.cluster, None).await?;
                match serving_approval(&csr, &nodes) {
                    Some(m) => m,
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        let done = typed::edit(&self.cluster, &csr, Subresource::Approval, |obj| {
            let undecided = typed::decode::<CertificateSigningRequest>(obj)
                .is_ok_and(|c| !decided_or_signed(&c));
            if !undecided {
                return false;
            }
            let approved = json!({
                "type": "Approved",
                "status": "True",
                "reason": "AutoApproved",
                "message": message,
            });
            match obj["status"]["conditions"].as_array_mut() {
                Some(list) => list.push(approved),
                None => obj["status"]["conditions"] = json!([approved]),
            }
            true
        })
        .await?;
        if done.is_some() {
            tracing::info!(csr = %name, "approved");
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests;
