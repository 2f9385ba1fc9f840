//! The CSR cleaner (upstream `pkg/controller/certificates/cleaner/cleaner.go`): garbage
//! collects CertificateSigningRequests, since nodes make them all the time (every join and
//! every certificate renewal). Once an hour, as upstream's `pollingInterval` (and once at
//! start), it lists them all and deletes each that is: approved with a certificate and approved
//! more than an hour ago, denied or failed more than an hour ago (the condition's
//! `lastUpdateTime`), pending (no condition) and created more than 24 hours ago, or approved
//! with a certificate that has expired.
//!
//! Start at [`run`]; the rules are [`should_delete`].

#[cfg(test)]
mod tests;

use std::time::Duration;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions};
use crate::typed;

/// How often every request is looked at.
pub const POLLING_INTERVAL: Duration = Duration::from_secs(3600);
const APPROVED_EXPIRATION: SignedDuration = SignedDuration::from_hours(1);
const DENIED_EXPIRATION: SignedDuration = SignedDuration::from_hours(1);
const PENDING_EXPIRATION: SignedDuration = SignedDuration::from_hours(24);

/// Runs the cleaner until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(POLLING_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        clean(&cluster).await;
    }
}

/// One pass: lists the requests and deletes those [`should_delete`] picks.
pub(crate) async fn clean(cluster: &ClusterRef) {
    let csrs = match typed::list::<CertificateSigningRequest>(cluster, None).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "unable to list CSRs");
            return;
        }
    };
    let now = api::time::now();
    for csr in csrs {
        let name = typed::name(&csr.metadata).to_string();
        let Some(why) = should_delete(&csr, now) else {
            continue;
        };
        tracing::info!(csr = %name, "cleaning CSR: {why}");
        let opts = DeleteOptions {
            preconditions_uid: csr.metadata.uid.clone(),
            ..DeleteOptions::default()
        };
        match cluster
            .delete(typed::info::<CertificateSigningRequest>(), "", &name, &opts)
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 404 || e.code == 409 => {}
            Err(e) => tracing::warn!(csr = %name, error = %e.message, "unable to delete CSR"),
        }
    }
}

/// Whether `t` is more than `d` before `now` (upstream `isOlderThan`; an unset time never is).
fn older_than(t: Option<Timestamp>, d: SignedDuration, now: Timestamp) -> bool {
    t.is_some_and(|t| now.duration_since(t) > d)
}

/// Upstream `handle`'s rules: why the request is to be deleted now, `None` to keep it.
pub fn should_delete(csr: &CertificateSigningRequest, now: Timestamp) -> Option<&'static str> {
    let status = csr.status.as_ref();
    let conditions = status
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let certificate = status
        .and_then(|s| s.certificate.as_ref())
        .map(|c| c.0.as_slice());
    let updated = |c: &k8s_openapi::api::certificates::v1::CertificateSigningRequestCondition| {
        c.last_update_time.as_ref().map(|t| t.0)
    };
    let issued = certificate.is_some();
    for c in conditions {
        match c.type_.as_str() {
            "Approved" if issued && older_than(updated(c), APPROVED_EXPIRATION, now) => {
                return Some("more than 1h0m0s old and approved");
            }
            "Denied" if older_than(updated(c), DENIED_EXPIRATION, now) => {
                return Some("more than 1h0m0s old and denied");
            }
            "Failed" if older_than(updated(c), DENIED_EXPIRATION, now) => {
                return Some("more than 1h0m0s old and failed");
            }
            _ => {}
        }
    }
    if conditions.is_empty()
        && older_than(
            csr.metadata.creation_timestamp.as_ref().map(|t| t.0),
            PENDING_EXPIRATION,
            now,
        )
    {
        return Some("more than 24h0m0s old and unhandled");
    }
    let approved = conditions.iter().any(|c| c.type_ == "Approved");
    if approved && certificate.is_some_and(|pem| expired(pem, now)) {
        return Some("the associated certificate is expired");
    }
    None
}

/// Whether the first certificate of `pem` ended before `now` (an unreadable one is not
/// judged: upstream logs the error and keeps the request).
fn expired(pem: &[u8], now: Timestamp) -> bool {
    let Some(block) = api::certificates::pem_blocks(pem).into_iter().next() else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&block.der) else {
        return false;
    };
    now.as_second() > cert.validity().not_after.timestamp()
}
