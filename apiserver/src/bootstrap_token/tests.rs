use super::*;

async fn registry() -> Registry {
    let reg = Registry::new(store::Store::memory());
    crate::bootstrap(&reg).await.unwrap();
    reg
}

async fn put(reg: &Registry, secret: &Value) {
    let info = secrets_info().unwrap();
    reg.create(info, NAMESPACE, secret.clone(), &Default::default())
        .await
        .unwrap();
}

#[test]
fn parse_and_generate() {
    let (id, s) = generate();
    let token = format!("{id}.{s}");
    assert_eq!(parse(&token), Some((id.as_str(), s.as_str())));
    assert_eq!(
        parse("abcdef.0123456789abcdef"),
        Some(("abcdef", "0123456789abcdef"))
    );
    for bad in [
        "ABCDEF.0123456789abcdef",
        "abcde.0123456789abcdef",
        "abcdef0123456789abcdef",
        "abcdef.0123456789abcde",
        "abcdef.0123456789abcdef.x",
        "",
    ] {
        assert_eq!(parse(bad), None, "{bad}");
    }
    assert!(valid_group(DEFAULT_NODE_TOKEN_GROUP));
    assert!(!valid_group("system:masters"));
    assert!(!valid_group("system:bootstrappers:"));
    assert!(!valid_group("system:bootstrappers:a-"));
}

#[tokio::test]
async fn a_valid_token_authenticates_its_id_in_the_bootstrappers_groups() {
    let reg = registry().await;
    let now = OffsetDateTime::now_utc();
    put(
        &reg,
        &secret(
            "abcdef",
            "0123456789abcdef",
            Some(now + time::Duration::hours(1)),
            None,
        ),
    )
    .await;
    let user = authenticate(&reg, "abcdef.0123456789abcdef", now).unwrap();
    assert_eq!(user.name, "system:bootstrap:abcdef");
    assert_eq!(
        user.groups,
        [GROUP, DEFAULT_NODE_TOKEN_GROUP, "system:authenticated"]
    );
    // Wrong secret, unknown id, malformed: nobody.
    assert!(authenticate(&reg, "abcdef.0123456789abcdeg", now).is_none());
    assert!(authenticate(&reg, "zzzzzz.0123456789abcdef", now).is_none());
    assert!(authenticate(&reg, "abcdef:0123456789abcdef", now).is_none());
    // Expired.
    assert!(
        authenticate(
            &reg,
            "abcdef.0123456789abcdef",
            now + time::Duration::hours(2)
        )
        .is_none()
    );
}

#[tokio::test]
async fn tokens_not_for_authentication_or_with_foreign_groups_are_refused() {
    let reg = registry().await;
    let now = OffsetDateTime::now_utc();
    let mut s = secret("aaaaaa", "0123456789abcdef", None, None);
    s["data"]["usage-bootstrap-authentication"] =
        json!(base64::engine::general_purpose::STANDARD.encode("false"));
    put(&reg, &s).await;
    assert!(authenticate(&reg, "aaaaaa.0123456789abcdef", now).is_none());
    let mut s = secret("bbbbbb", "0123456789abcdef", None, None);
    s["data"]["auth-extra-groups"] =
        json!(base64::engine::general_purpose::STANDARD.encode("system:masters"));
    put(&reg, &s).await;
    assert!(authenticate(&reg, "bbbbbb.0123456789abcdef", now).is_none());
    let mut s = secret("cccccc", "0123456789abcdef", None, None);
    s["type"] = json!("Opaque");
    put(&reg, &s).await;
    assert!(authenticate(&reg, "cccccc.0123456789abcdef", now).is_none());
    // No expiration: valid for ever.
    put(&reg, &secret("dddddd", "0123456789abcdef", None, None)).await;
    assert!(
        authenticate(
            &reg,
            "dddddd.0123456789abcdef",
            now + time::Duration::days(3650)
        )
        .is_some()
    );
}

#[test]
fn ca_hash_is_the_sha256_of_the_subject_public_key_info() {
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::tls::ClusterCa::load_or_create(dir.path()).unwrap();
    let h = ca_cert_hash(ca.cert_der()).unwrap();
    assert!(h.starts_with("sha256:"));
    assert_eq!(h.len(), 7 + 64);
    let (_, cert) = x509_parser::parse_x509_certificate(ca.cert_der()).unwrap();
    let expected = ring::digest::digest(&ring::digest::SHA256, cert.public_key().raw);
    let hex: String = expected
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(h, format!("sha256:{hex}"));
}
