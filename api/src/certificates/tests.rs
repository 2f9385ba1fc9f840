use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

use super::*;

/// A PEM request for `cn`/`orgs` with `sans`, signed by a fresh P-256 key.
pub(crate) fn request(cn: &str, orgs: &[&str], sans: Vec<SanType>) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    for o in orgs {
        dn.push(DnType::OrganizationName, *o);
    }
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn usages(u: &[&str]) -> Vec<String> {
    u.iter().map(|s| s.to_string()).collect()
}

fn ip(s: &str) -> SanType {
    SanType::IpAddress(s.parse().unwrap())
}

fn dns(s: &str) -> SanType {
    SanType::DnsName(s.try_into().unwrap())
}

#[test]
fn parses_subject_names_and_key() {
    let pem = request(
        "system:node:n1",
        &["system:nodes"],
        vec![dns("n1"), ip("10.0.0.1"), ip("::1")],
    );
    let r = parse_csr(pem.as_bytes()).unwrap();
    assert_eq!(r.common_name, "system:node:n1");
    assert_eq!(r.organizations, ["system:nodes"]);
    assert_eq!(r.dns_names, ["n1"]);
    assert_eq!(
        r.ip_addresses,
        [
            "10.0.0.1".parse::<IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );
    assert_eq!(r.key_algorithm, KeyAlgorithm::Ecdsa);
    r.check_signature().unwrap();
    // Text before the block is skipped, as pem.Decode does.
    let prefixed = format!("comment\n{pem}");
    assert!(parse_csr(prefixed.as_bytes()).is_ok());
}

#[test]
fn refuses_other_blocks_bad_der_and_forged_signatures() {
    assert_eq!(parse_csr(b"nothing"), Err(CsrError::NotARequest));
    let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert_eq!(parse_csr(cert.as_bytes()), Err(CsrError::NotARequest));
    let junk = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    assert_eq!(parse_csr(junk.as_bytes()), Err(CsrError::Malformed));
    // The subject changed after signing: the signature no longer verifies.
    let pem = request("system:node:a", &["system:nodes"], vec![dns("a")]);
    let mut r = parse_csr(pem.as_bytes()).unwrap();
    let at = r
        .der
        .windows(b"system:node:a".len())
        .position(|w| w == b"system:node:a")
        .unwrap();
    r.der[at + "system:node:".len()] = b'b';
    assert_eq!(
        r.check_signature(),
        Err(CsrError::Signature("x509: ECDSA verification failure"))
    );
}

#[test]
fn kubelet_serving_rules_in_upstream_order() {
    let ok_usages = usages(&["digital signature", "key encipherment", "server auth"]);
    let check = |cn: &str, orgs: &[&str], sans: Vec<SanType>, u: &[String]| {
        let r = parse_csr(request(cn, orgs, sans).as_bytes()).unwrap();
        validate_kubelet_serving_csr(&r, u)
    };
    assert_eq!(
        check(
            "system:node:a",
            &["system:nodes"],
            vec![ip("10.0.0.1")],
            &ok_usages
        ),
        Ok(())
    );
    // Key encipherment may be left out (non-RSA keys).
    let no_rsa = usages(&["server auth", "digital signature"]);
    assert_eq!(
        check("system:node:a", &["system:nodes"], vec![dns("a")], &no_rsa),
        Ok(())
    );
    assert_eq!(
        check(
            "system:node:a",
            &["system:masters"],
            vec![dns("a")],
            &ok_usages
        )
        .unwrap_err(),
        "subject organization is not system:nodes"
    );
    assert_eq!(
        check("system:node:a", &["system:nodes"], vec![], &ok_usages).unwrap_err(),
        "DNS or IP subjectAltName is required"
    );
    assert_eq!(
        check(
            "system:node:a",
            &["system:nodes"],
            vec![dns("a"), SanType::Rfc822Name("a@b.c".try_into().unwrap())],
            &ok_usages
        )
        .unwrap_err(),
        "Email subjectAltNames are not allowed"
    );
    assert_eq!(
        check(
            "system:node:a",
            &["system:nodes"],
            vec![dns("a"), SanType::URI("https://a".try_into().unwrap())],
            &ok_usages
        )
        .unwrap_err(),
        "URI subjectAltNames are not allowed"
    );
    assert_eq!(
        check(
            "system:node:a",
            &["system:nodes"],
            vec![dns("a")],
            &usages(&["digital signature", "key encipherment", "client auth"])
        )
        .unwrap_err(),
        "usages did not match [digital signature key encipherment server auth]"
    );
    assert_eq!(
        check("admin", &["system:nodes"], vec![dns("a")], &ok_usages).unwrap_err(),
        "subject common name does not begin with system:node:"
    );
}

#[test]
fn kubelet_client_rules() {
    let ok = usages(&["digital signature", "client auth"]);
    let check = |sans: Vec<SanType>, u: &[String]| {
        let r = parse_csr(request("system:node:a", &["system:nodes"], sans).as_bytes()).unwrap();
        validate_kubelet_client_csr(&r, u)
    };
    assert_eq!(check(vec![], &ok), Ok(()));
    assert_eq!(
        check(vec![ip("10.0.0.1")], &ok).unwrap_err(),
        "IP subjectAltNames are not allowed"
    );
    assert_eq!(
        check(vec![], &usages(&["server auth"])).unwrap_err(),
        "usages did not match [client auth digital signature key encipherment]"
    );
}

#[test]
fn certificate_pem_checks() {
    assert_eq!(validate_certificate_pem(b""), Ok(()));
    assert_eq!(
        validate_certificate_pem(b"junk"),
        Err("must contain at least one CERTIFICATE PEM block".into())
    );
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["a".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem();
    assert_eq!(validate_certificate_pem(cert.as_bytes()), Ok(()));
    let two = format!("{cert}{cert}");
    assert_eq!(validate_certificate_pem(two.as_bytes()), Ok(()));
    let with_key = format!("{cert}{}", key.serialize_pem());
    assert_eq!(
        validate_certificate_pem(with_key.as_bytes()),
        Err("only CERTIFICATE PEM blocks are allowed, found \"PRIVATE KEY\"".into())
    );
    let headers = cert.replacen(
        "-----BEGIN CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\n",
        1,
    );
    assert_eq!(
        validate_certificate_pem(headers.as_bytes()),
        Err("no PEM block headers are permitted".into())
    );
}
