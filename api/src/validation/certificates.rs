//! CertificateSigningRequest validation (upstream `pkg/apis/certificates/validation`): the
//! request must be a signed PKCS#10 PEM, usages known and unique, the signer name
//! `domain/path`, `expirationSeconds` at least 600, conditions well formed, and
//! `status.certificate` PEM certificates. Updates may not remove Approved/Denied/Failed
//! conditions; only the `approval` subresource may add or change Approved/Denied and only
//! `status` may set the certificate, once. Problems an existing object already has are
//! tolerated on update, as upstream's compatibility options do.

use std::collections::BTreeSet;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use serde_json::Value;

use super::{Errors, child, index, is_dns1123_label, is_dns1123_subdomain, typed};
use crate::certificates::{self, KEY_USAGES, LEGACY_UNKNOWN_SIGNER};
use crate::status::{ApiError, FieldError};

/// Which write a CSR goes through (what upstream's strategies allow on each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrWrite {
    /// Create, or an update of the main resource.
    Main,
    /// The `status` subresource: may set `status.certificate` (once).
    Status,
    /// The `approval` subresource: may add or change Approved/Denied conditions.
    Approval,
}

/// Upstream `certificateValidationOptions`.
#[derive(Debug, Clone, Copy, Default)]
struct Options {
    allow_setting_approval_conditions: bool,
    allow_setting_certificate: bool,
    allow_both_approved_and_denied: bool,
    allow_legacy_signer_name: bool,
    allow_duplicate_condition_types: bool,
    allow_empty_condition_type: bool,
    allow_arbitrary_certificate: bool,
    allow_unknown_usages: bool,
    allow_duplicate_usages: bool,
}

/// The CSR's name needs no particular form (upstream `ValidateCertificateRequestName`); the
/// generic path-segment check runs after the kind's rules.
pub fn name_is_anything(_name: &str, _prefix: bool) -> Vec<String> {
    Vec::new()
}

fn csr(obj: &Value) -> Result<CertificateSigningRequest, ApiError> {
    typed(obj)
}

fn conditions(c: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

fn certificate(c: &CertificateSigningRequest) -> &[u8] {
    c.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .map_or(&[], |b| b.0.as_slice())
}

fn usages(c: &CertificateSigningRequest) -> &[String] {
    c.spec.usages.as_deref().unwrap_or(&[])
}

fn has_unknown_usage(c: &CertificateSigningRequest) -> bool {
    usages(c).iter().any(|u| !KEY_USAGES.contains(&u.as_str()))
}

fn has_duplicate_usage(c: &CertificateSigningRequest) -> bool {
    let mut seen = BTreeSet::new();
    usages(c).iter().any(|u| !seen.insert(u))
}

fn has_type(c: &CertificateSigningRequest, t: &str) -> bool {
    conditions(c).iter().any(|x| x.type_ == t)
}

/// Upstream `getValidationOptions`: what an existing object already got away with stays
/// allowed.
fn options(new: &CertificateSigningRequest, old: Option<&CertificateSigningRequest>) -> Options {
    let Some(old) = old else {
        return Options::default();
    };
    let mut seen = BTreeSet::new();
    Options {
        allow_both_approved_and_denied: has_type(old, "Approved") && has_type(old, "Denied"),
        allow_legacy_signer_name: old.spec.signer_name == LEGACY_UNKNOWN_SIGNER,
        allow_duplicate_condition_types: conditions(old).iter().any(|c| !seen.insert(&c.type_)),
        allow_empty_condition_type: conditions(old).iter().any(|c| c.type_.is_empty()),
        allow_arbitrary_certificate: certificate(new) == certificate(old)
            || certificates::validate_certificate_pem(certificate(old)).is_err(),
        allow_unknown_usages: has_unknown_usage(old),
        allow_duplicate_usages: has_duplicate_usage(old),
        ..Options::default()
    }
}

/// Go's `%#v` of a byte slice, how upstream prints a bad `spec.request`.
fn go_bytes(b: &[u8]) -> Value {
    let items: Vec<String> = b.iter().map(|x| format!("0x{x:x}")).collect();
    serde_json::json!({"$go": format!("[]byte{{{}}}", items.join(", "))})
}

/// Upstream `ValidateSignerName`: `domain/path`, the domain DNS labels (at least two), the
/// path DNS subdomains separated by dots, at most 571 characters in all.
pub fn validate_signer_name(path: &str, name: &str) -> Errors {
    let mut errs = Errors::new();
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let segments: Vec<&str> = name.split('/').collect();
    let [domain, rest] = segments.as_slice() else {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
        return errs;
    };
    if domain.len() > 253 {
        errs.push(FieldError::too_long(path, 253));
    }
    // The domain's labels are DNS labels, the path's DNS subdomains; only the first bad one
    // is reported, as further messages would be indistinguishable.
    let first_bad_label = |errs: &mut Errors, segment: &str, check: fn(&str) -> Vec<String>| {
        if let Some((l, msgs)) = segment
            .split('.')
            .map(|l| (l, check(l)))
            .find(|(_, m)| !m.is_empty())
        {
            for m in msgs {
                errs.push(FieldError::invalid(
                    path,
                    segment,
                    format!("validating label {}: {m}", crate::status::go_quote(l)),
                ));
            }
        }
    };
    first_bad_label(&mut errs, domain, is_dns1123_label);
    if !domain.contains('.') {
        errs.push(FieldError::invalid(
            path,
            *domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    first_bad_label(&mut errs, rest, is_dns1123_subdomain);
    let max = 253 + (253 + 63 + 1) + 1;
    if name.len() > max {
        errs.push(FieldError::too_long(path, max));
    }
    errs
}

/// The spec and status rules of `validateCertificateSigningRequest` (its ObjectMeta part is
/// the generic one, run before).
fn validate_spec_and_status(c: &CertificateSigningRequest, opts: Options) -> Errors {
    let mut errs = Errors::new();
    let request = &c.spec.request.0;
    let parsed = certificates::parse_csr(request).and_then(|r| r.check_signature());
    if let Err(e) = parsed {
        errs.push(FieldError::invalid(
            "spec.request",
            go_bytes(request),
            e.to_string(),
        ));
    }
    let usages = usages(c);
    if usages.is_empty() {
        errs.push(FieldError::required("spec.usages", ""));
    }
    if !opts.allow_unknown_usages {
        for (i, u) in usages.iter().enumerate() {
            if !KEY_USAGES.contains(&u.as_str()) {
                errs.push(FieldError::not_supported(
                    index("spec.usages", i),
                    u.as_str(),
                    KEY_USAGES,
                ));
            }
        }
    }
    if !opts.allow_duplicate_usages {
        let mut seen = BTreeSet::new();
        for (i, u) in usages.iter().enumerate() {
            if !seen.insert(u) {
                errs.push(FieldError::duplicate(index("spec.usages", i), u.as_str()));
            }
        }
    }
    let signer = &c.spec.signer_name;
    if !opts.allow_legacy_signer_name && signer == LEGACY_UNKNOWN_SIGNER {
        errs.push(FieldError::invalid(
            "spec.signerName",
            signer.as_str(),
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        errs.extend(validate_signer_name("spec.signerName", signer));
    }
    if let Some(s) = c.spec.expiration_seconds
        && s < 600
    {
        errs.push(FieldError::invalid(
            "spec.expirationSeconds",
            s,
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    errs.extend(validate_conditions(c, opts));
    if !opts.allow_arbitrary_certificate
        && let Err(e) = certificates::validate_certificate_pem(certificate(c))
    {
        errs.push(FieldError::invalid(
            "status.certificate",
            "<certificate data>",
            e,
        ));
    }
    errs
}

/// Upstream `validateConditions`.
fn validate_conditions(c: &CertificateSigningRequest, opts: Options) -> Errors {
    const PATH: &str = "status.conditions";
    let mut errs = Errors::new();
    let mut seen = BTreeSet::new();
    let (mut approved, mut denied) = (false, false);
    for (i, cond) in conditions(c).iter().enumerate() {
        let at = index(PATH, i);
        if !opts.allow_empty_condition_type && cond.type_.is_empty() {
            errs.push(FieldError::required(child(&at, "type"), ""));
        }
        let allowed: &[&str] = if matches!(cond.type_.as_str(), "Approved" | "Denied" | "Failed") {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if cond.status.is_empty() {
            errs.push(FieldError::required(child(&at, "status"), ""));
        } else if !allowed.contains(&cond.status.as_str()) {
            errs.push(FieldError::not_supported(
                child(&at, "status"),
                cond.status.as_str(),
                allowed,
            ));
        }
        if !opts.allow_both_approved_and_denied {
            let clash = match cond.type_.as_str() {
                "Approved" => {
                    approved = true;
                    denied
                }
                "Denied" => {
                    denied = true;
                    approved
                }
                _ => false,
            };
            if clash {
                errs.push(FieldError::invalid(
                    PATH,
                    cond.type_.as_str(),
                    "Approved and Denied conditions are mutually exclusive",
                ));
            }
        }
        if !opts.allow_duplicate_condition_types && !seen.insert(cond.type_.as_str()) {
            errs.push(FieldError::duplicate(
                child(&at, "type"),
                cond.type_.as_str(),
            ));
        }
    }
    errs
}

/// The CSR rules of a create (after ObjectMeta).
pub fn validate_csr(obj: &Value) -> Result<Errors, ApiError> {
    let c = csr(obj)?;
    Ok(validate_spec_and_status(&c, options(&c, None)))
}

/// The CSR rules of an update through `write` (after the create rules' ObjectMeta part and
/// before `ValidateObjectMetaUpdate`, which the caller appends, as upstream does).
pub fn validate_csr_update(new: &Value, old: &Value, write: CsrWrite) -> Result<Errors, ApiError> {
    let (new, old) = (csr(new)?, csr(old)?);
    let mut opts = options(&new, Some(&old));
    opts.allow_setting_approval_conditions = write == CsrWrite::Approval;
    opts.allow_setting_certificate = write == CsrWrite::Status;
    let mut errs = validate_spec_and_status(&new, opts);
    let of_type =
        |c: &CertificateSigningRequest, t: &str| -> Vec<CertificateSigningRequestCondition> {
            conditions(c)
                .iter()
                .filter(|x| x.type_ == t)
                .cloned()
                .collect()
        };
    for t in ["Approved", "Denied", "Failed"] {
        if of_type(&new, t).len() < of_type(&old, t).len() {
            errs.push(FieldError::forbidden(
                "status.conditions",
                format!(
                    "updates may not remove a condition of type {}",
                    crate::status::go_quote(t)
                ),
            ));
        }
    }
    if !opts.allow_setting_approval_conditions {
        for t in ["Approved", "Denied"] {
            let (o, n) = (of_type(&old, t), of_type(&new, t));
            let q = crate::status::go_quote(t);
            if n.len() > o.len() {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    format!("updates may not add a condition of type {q}"),
                ));
            } else if n.len() == o.len() && n != o {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    format!(
                        "updates may not modify a condition of type {q}\n{}",
                        condition_diff(&o, &n)
                    ),
                ));
            }
        }
    }
    if certificate(&new) != certificate(&old) {
        if !opts.allow_setting_certificate {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "updates may not set certificate content",
            ));
        } else if !certificate(&old).is_empty() {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
    }
    Ok(errs)
}

/// The old and new conditions, one line each (upstream prints a go-cmp diff here).
fn condition_diff(
    old: &[CertificateSigningRequestCondition],
    new: &[CertificateSigningRequestCondition],
) -> String {
    let json =
        |c: &[CertificateSigningRequestCondition]| serde_json::to_string(c).unwrap_or_default();
    format!("- {}\n+ {}", json(old), json(new))
}
