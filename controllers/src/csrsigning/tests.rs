use std::net::IpAddr;

use apiserver::Registry;
use apiserver::registry::{UpdateMode, WriteOptions};
use rcgen::{KeyPair, SanType};
use x509_parser::extensions::ParsedExtension;

use super::*;
use crate::testutil::{authority, ca, cluster, create, eventually, get, registry_with_namespace};

fn decode_b64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

/// A CSR object: `cn`/`orgs`/`sans` signed by a fresh key, for `signer` with `usages`.
fn csr(
    name: &str,
    cn: &str,
    orgs: &[&str],
    sans: Vec<SanType>,
    signer: &str,
    usages: &[&str],
) -> Value {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        params.distinguished_name.push(DnType::OrganizationName, *o);
    }
    params.subject_alt_names = sans;
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    json!({"metadata": {"name": name},
           "spec": {"request": encode_b64(pem.as_bytes()), "signerName": signer, "usages": usages}})
}

fn serving(name: &str, ip: &str) -> Value {
    csr(
        name,
        "system:node:n1",
        &["system:nodes"],
        vec![SanType::IpAddress(ip.parse().unwrap())],
        certificates::KUBELET_SERVING_SIGNER,
        &["digital signature", "server auth"],
    )
}

/// Approves `name` through the approval subresource, as `kubectl certificate approve` does.
async fn approve(registry: &Registry, name: &str) {
    registry
        .update_with_mode(
            csrs(),
            "",
            name,
            UpdateMode::Approval,
            &WriteOptions::default(),
            &mut |o| {
                o["status"]["conditions"] =
                    json!([{"type": "Approved", "status": "True", "reason": "Test"}]);
                Ok(true)
            },
        )
        .await
        .unwrap();
}

fn certificate(registry: &Registry, name: &str) -> Option<Vec<u8>> {
    let obj = get(registry, "certificatesigningrequests", "", name)?;
    let pem = decode_b64(obj["status"]["certificate"].as_str()?);
    let block = certificates::pem_blocks(&pem).into_iter().next()?;
    Some(block.der)
}

fn conditions(registry: &Registry, name: &str) -> Vec<Value> {
    get(registry, "certificatesigningrequests", "", name)
        .and_then(|o| o["status"]["conditions"].as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn signs_approved_kubelet_serving_requests_only() {
    let registry = registry_with_namespace("default").await;
    let ca = ca();
    let stop = CancellationToken::new();
    tokio::spawn(run(
        cluster(&registry),
        authority(&ca),
        DEFAULT_DURATION,
        stop.clone(),
    ));
    let plural = "certificatesigningrequests";
    create(&registry, plural, "", serving("pending", "10.0.0.1")).await;
    create(&registry, plural, "", serving("approved", "10.0.0.2")).await;
    let mut short = serving("short", "10.0.0.3");
    short["spec"]["expirationSeconds"] = json!(600);
    create(&registry, plural, "", short).await;
    let other = csr(
        "other-signer",
        "x",
        &[],
        vec![SanType::DnsName("x".try_into().unwrap())],
        "example.com/mine",
        &["server auth"],
    );
    create(&registry, plural, "", other).await;
    for n in ["approved", "short", "other-signer"] {
        approve(&registry, n).await;
    }
    eventually("approved requests signed", || {
        certificate(&registry, "approved").is_some() && certificate(&registry, "short").is_some()
    })
    .await;
    // Give the controller time to (wrongly) act on the others.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(certificate(&registry, "pending").is_none());
    assert!(certificate(&registry, "other-signer").is_none());

    let der = certificate(&registry, "approved").unwrap();
    assert!(ca.issued(&der));
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let cn: Vec<_> = cert
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap())
        .collect();
    let o: Vec<_> = cert
        .subject()
        .iter_organization()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!((cn, o), (vec!["system:node:n1"], vec!["system:nodes"]));
    let mut ips = Vec::new();
    let mut server_only = None;
    let mut ca_bit = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for n in &san.general_names {
                    if let x509_parser::extensions::GeneralName::IPAddress(b) = n {
                        ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()));
                    }
                }
            }
            ParsedExtension::ExtendedKeyUsage(u) => {
                server_only = Some(u.server_auth && !u.client_auth)
            }
            ParsedExtension::BasicConstraints(b) => ca_bit = Some(b.ca),
            _ => {}
        }
    }
    assert_eq!(ips, ["10.0.0.2".parse::<IpAddr>().unwrap()]);
    assert_eq!((server_only, ca_bit), (Some(true), Some(false)));
    let lifetime = |der: &[u8]| {
        let (nb, na) = apiserver::tls::validity(der).unwrap();
        (na - nb).whole_minutes()
    };
    // A year by default (backdated five minutes at both ends), the requested ten minutes when
    // asked (short certificates keep their full length).
    assert_eq!(lifetime(&der), 365 * 24 * 60);
    assert_eq!(lifetime(&certificate(&registry, "short").unwrap()), 15);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn requests_breaking_the_kubelet_rules_fail_with_the_reason() {
    let registry = registry_with_namespace("default").await;
    let stop = CancellationToken::new();
    tokio::spawn(run(
        cluster(&registry),
        authority(&ca()),
        DEFAULT_DURATION,
        stop.clone(),
    ));
    // A node asking for a serving certificate as someone else.
    let admin = csr(
        "admin",
        "system:admin",
        &["system:masters"],
        vec![SanType::IpAddress("10.0.0.1".parse().unwrap())],
        certificates::KUBELET_SERVING_SIGNER,
        &["digital signature", "server auth"],
    );
    create(&registry, "certificatesigningrequests", "", admin).await;
    approve(&registry, "admin").await;
    eventually("a Failed condition", || {
        conditions(&registry, "admin").len() == 2
    })
    .await;
    let failed = &conditions(&registry, "admin")[1];
    assert_eq!(failed["type"], "Failed");
    assert_eq!(failed["status"], "True");
    assert_eq!(failed["reason"], "SignerValidationFailure");
    assert_eq!(
        failed["message"],
        "subject organization is not system:nodes"
    );
    assert!(failed["lastTransitionTime"].is_string());
    assert!(certificate(&registry, "admin").is_none());
    stop.cancel();
}

#[test]
fn durations_and_usages_as_upstream() {
    let year = DEFAULT_DURATION;
    assert_eq!(duration(None, year), year);
    assert_eq!(duration(Some(60), year), MIN_DURATION);
    assert_eq!(duration(Some(3600), year), Duration::from_secs(3600));
    assert_eq!(duration(Some(i64::from(i32::MAX)), year), year);
    // `--cluster-signing-duration` shorter than the request, even than 10 minutes, wins.
    let short = Duration::from_secs(20);
    assert_eq!(duration(None, short), short);
    assert_eq!(duration(Some(600), short), short);
    let day = Duration::from_secs(86_400);
    assert_eq!(duration(Some(3600), day), Duration::from_secs(3600));
    assert_eq!(duration(Some(60), day), MIN_DURATION);
    let (ku, eku) = key_usages(&[
        "client auth".into(),
        "digital signature".into(),
        "server auth".into(),
        "signing".into(),
    ])
    .unwrap();
    assert_eq!(ku, [KeyUsagePurpose::DigitalSignature]);
    assert_eq!(
        eku,
        [
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth
        ]
    );
    assert_eq!(
        key_usages(&["bogus".into()]).unwrap_err(),
        "unrecognized usage values: [\"bogus\"]"
    );
}

/// A read that fails is retried (the reconcile errs and is requeued), not taken for a
/// request that is gone.
#[tokio::test]
async fn a_failed_read_is_an_error_not_gone() {
    let registry = registry_with_namespace("default").await;
    let port = Arc::new(crate::testutil::TestPort::new(&registry));
    let ca = ca();
    let controller = Arc::new(Controller {
        cluster: port.clone(),
        ca: authority(&ca),
        cert_ttl: DEFAULT_DURATION,
        queue: WorkQueue::controller_default(),
    });
    assert!(matches!(
        controller.clone().reconcile("missing".into()).await,
        Ok(None)
    ));
    port.partitioned
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(controller.reconcile("missing".into()).await.is_err());
}
