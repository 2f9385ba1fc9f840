use x509_parser::extensions::ParsedExtension;

use super::*;

fn parse(der: &[u8]) -> x509_parser::certificate::X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).unwrap().1
}

fn days(a: OffsetDateTime, b: OffsetDateTime) -> i64 {
    (b - a).whole_days()
}

fn sans() -> Vec<String> {
    vec!["127.0.0.1".to_string(), "localhost".to_string()]
}

#[test]
fn created_once_then_reused_with_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    let a = Credentials::load_or_create(dir.path(), &sans()).unwrap();
    let b = Credentials::load_or_create(dir.path(), &sans()).unwrap();
    assert_eq!(a.token, b.token);
    assert_eq!(a.ca_pem, b.ca_pem);
    assert_eq!(a.serving.cert_der, b.serving.cert_der);
    assert_eq!(a.kubelet_client.cert_der, b.kubelet_client.cert_der);
    use std::os::unix::fs::PermissionsExt;
    for f in [CA_KEY, SERVER_KEY, KUBELET_CLIENT_KEY, TOKEN] {
        let mode = std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // New SANs: new serving cert, same CA, client certificate and token.
    let c = Credentials::load_or_create(dir.path(), &["10.0.0.1".to_string()]).unwrap();
    assert_eq!(c.ca_pem, a.ca_pem);
    assert_ne!(c.serving.cert_der, a.serving.cert_der);
    assert_eq!(c.kubelet_client.cert_der, a.kubelet_client.cert_der);
    assert_eq!(c.token, a.token);
    c.server_config().unwrap();
    c.kubelet_client_config().unwrap();
}

/// kubeadm's lifetimes: the CA ten years and a CA for leaves only (`pathlen:0`), leaves one
/// year, everything backdated five minutes, never 1975–4096.
#[test]
fn kubeadm_lifetimes_and_a_leaf_only_ca() {
    let dir = tempfile::tempdir().unwrap();
    let creds = Credentials::load_or_create(dir.path(), &sans()).unwrap();
    let now = OffsetDateTime::now_utc();
    let ca = parse(creds.ca.cert_der());
    let v = ca.validity();
    assert_eq!(
        days(v.not_before.to_datetime(), v.not_after.to_datetime()),
        3650
    );
    let backdate = now - v.not_before.to_datetime();
    assert!(
        backdate >= time::Duration::minutes(5) && backdate < time::Duration::minutes(6),
        "{backdate}"
    );
    let bc = ca.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    for leaf in [&creds.serving, &creds.kubelet_client] {
        let cert = parse(&leaf.cert_der);
        let v = cert.validity();
        assert_eq!(
            days(v.not_before.to_datetime(), v.not_after.to_datetime()),
            365
        );
        assert!(creds.ca.issued(&leaf.cert_der));
        assert!(
            !cert
                .basic_constraints()
                .unwrap()
                .is_some_and(|b| b.value.ca)
        );
    }
    // The client certificate towards agents is kubeadm's apiserver-kubelet-client.
    let client = parse(&creds.kubelet_client.cert_der);
    let cn: Vec<_> = client
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap())
        .collect();
    let o: Vec<_> = client
        .subject()
        .iter_organization()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        (cn, o),
        (vec![KUBELET_CLIENT_CN], vec![KUBELET_CLIENT_GROUP])
    );
    let eku = client
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(u) => Some(u.client_auth && !u.server_auth),
            _ => None,
        });
    assert_eq!(eku, Some(true));
}

/// A leaf with less than 90 days left, or from another CA, is re-issued at start; the CA is
/// kept (its key keeps signing).
#[test]
fn leaves_near_expiry_or_from_another_ca_are_renewed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = Credentials::load_or_create(dir.path(), &sans()).unwrap();
    // Replace the serving certificate by one of this CA that ends in 30 days.
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(sans()).unwrap();
    let short = first
        .ca
        .sign(params, &key, Duration::from_secs(30 * 24 * 3600))
        .unwrap();
    std::fs::write(dir.path().join(SERVER_CERT), short.pem()).unwrap();
    write_private(&dir.path().join(SERVER_KEY), key.serialize_pem().as_bytes()).unwrap();
    // And the client certificate by one another CA signed for a year.
    let other = tempfile::tempdir().unwrap();
    let foreign = Credentials::load_or_create(other.path(), &sans()).unwrap();
    std::fs::copy(
        other.path().join(KUBELET_CLIENT_CERT),
        dir.path().join(KUBELET_CLIENT_CERT),
    )
    .unwrap();
    std::fs::copy(
        other.path().join(KUBELET_CLIENT_KEY),
        dir.path().join(KUBELET_CLIENT_KEY),
    )
    .unwrap();
    assert!(!first.ca.issued(&foreign.kubelet_client.cert_der));

    let again = Credentials::load_or_create(dir.path(), &sans()).unwrap();
    assert_eq!(again.ca_pem, first.ca_pem);
    assert_ne!(again.serving.cert_der, short.der().clone());
    let v = parse(&again.serving.cert_der).validity().clone();
    assert_eq!(
        days(v.not_before.to_datetime(), v.not_after.to_datetime()),
        365
    );
    assert!(again.ca.issued(&again.kubelet_client.cert_der));
    // 91 days left is kept.
    let params = CertificateParams::new(sans()).unwrap();
    let long = again
        .ca
        .sign(params, &key, Duration::from_secs(91 * 24 * 3600))
        .unwrap();
    std::fs::write(dir.path().join(SERVER_CERT), long.pem()).unwrap();
    write_private(&dir.path().join(SERVER_KEY), key.serialize_pem().as_bytes()).unwrap();
    let kept = Credentials::load_or_create(dir.path(), &sans()).unwrap();
    assert_eq!(&kept.serving.cert_der, long.der());
    // What older versions issued (valid until 4096) is replaced by a one-year leaf.
    let mut params = CertificateParams::new(sans()).unwrap();
    params.is_ca = IsCa::ExplicitNoCa;
    let issuer = Issuer::from_ca_cert_der(kept.ca.cert_der(), &kept.ca.key).unwrap();
    let forever = params.signed_by(&key, &issuer).unwrap();
    let until = parse(forever.der()).validity().not_after.to_datetime();
    assert_eq!(until.year(), 4096);
    std::fs::write(dir.path().join(SERVER_CERT), forever.pem()).unwrap();
    let renewed = Credentials::load_or_create(dir.path(), &sans()).unwrap();
    assert_eq!(lifetime(&renewed.serving.cert_der), 365);
}

fn lifetime(der: &[u8]) -> i64 {
    let c = parse(der);
    let v = c.validity();
    days(v.not_before.to_datetime(), v.not_after.to_datetime())
}

#[test]
fn signing_window_backdates_clamps_and_refuses_an_expired_ca() {
    let now = OffsetDateTime::now_utc();
    let ca_end = plus(now, Duration::from_secs(1000 * 24 * 3600));
    let hour = Duration::from_secs(3600);
    // Long certificates are backdated at both ends, short ones only at the start.
    let (nb, na) = signing_window(now, 24 * hour, ca_end).unwrap();
    assert_eq!(now - nb, time::Duration::minutes(5));
    assert_eq!(
        na - now,
        time::Duration::hours(24) - time::Duration::minutes(5)
    );
    let (_, na) = signing_window(now, hour, ca_end).unwrap();
    assert_eq!(na - now, time::Duration::hours(1));
    // Never past the CA.
    let soon = plus(now, hour);
    assert_eq!(signing_window(now, LEAF_VALIDITY, soon).unwrap().1, soon);
    let err = signing_window(now, LEAF_VALIDITY, minus(now, hour)).unwrap_err();
    assert!(
        err.to_string().starts_with("the signer has expired"),
        "{err}"
    );
}
