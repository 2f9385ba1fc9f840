//! The Bearer token flow against a real registry (Debian's `docker-registry`) configured with
//! `auth: token`. The token server is test code (below): it checks Basic credentials and signs
//! JWTs with an ES256 key whose self-signed certificate the registry trusts
//! (`rootcertbundle`), putting the certificate in the token's `x5c` header.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use base64::Engine;
use image::error::Error;
use image::keyring::Credential;
use image::manifest::Platform;
use image::pull::{PullOptions, Puller};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVICE: &str = "paddock-test-registry";
const ISSUER: &str = "paddock-test-issuer";

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

struct TokenServer {
    port: u16,
    requests: Arc<AtomicUsize>,
    cert_pem: String,
}

/// Answers `GET /token?service=…&scope=…` (Basic auth alice:s3cret grants the scope asked
/// for; anonymous gets a token with no access; a wrong password gets 401).
async fn token_server() -> Result<TokenServer> {
    let key = rcgen::KeyPair::generate()?;
    let cert =
        rcgen::CertificateParams::new(vec!["paddock-token-issuer".into()])?.self_signed(&key)?;
    let signer = Arc::new(
        EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|e| anyhow::anyhow!("key: {e}"))?,
    );
    let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let signer = signer.clone();
            let x5c = x5c.clone();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 << 10 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let url = url::Url::parse(&format!("http://x{target}")).expect("target");
                let scopes: Vec<String> = url
                    .query_pairs()
                    .filter(|(k, _)| k == "scope")
                    .map(|(_, v)| v.into_owned())
                    .collect();
                let basic = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.eq_ignore_ascii_case("authorization")).then(|| v.trim().to_string())
                });
                let user = match basic.as_deref().and_then(|b| b.strip_prefix("Basic ")) {
                    None => None,
                    Some(enc) => {
                        let dec = base64::engine::general_purpose::STANDARD
                            .decode(enc)
                            .unwrap_or_default();
                        if dec == b"alice:s3cret" {
                            Some("alice")
                        } else {
                            let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#;
                            let resp = format!(
                                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = conn.write_all(resp.as_bytes()).await;
                            return;
                        }
                    }
                };
                let access: Vec<serde_json::Value> = if user.is_some() {
                    scopes
                        .iter()
                        .filter_map(|s| {
                            let mut p = s.splitn(3, ':');
                            let (t, n, a) = (p.next()?, p.next()?, p.next()?);
                            Some(json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
                        })
                        .collect()
                } else {
                    vec![]
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [x5c]});
                let claims = json!({"iss": ISSUER, "sub": user.unwrap_or(""), "aud": SERVICE,
                    "exp": now + 600, "nbf": now - 60, "iat": now, "jti": format!("{now}-{}", rand_id()), "access": access});
                let input = format!(
                    "{}.{}",
                    b64(header.to_string().as_bytes()),
                    b64(claims.to_string().as_bytes())
                );
                let sig = signer
                    .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
                    .expect("sign");
                let token = format!("{input}.{}", b64(sig.as_ref()));
                let body = json!({"token": token, "expires_in": 600}).to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    Ok(TokenServer {
        port,
        requests,
        cert_pem: cert.pem(),
    })
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow_from_the_www_authenticate_challenge() -> Result<()> {
    let ts = token_server().await?;
    let mut reg = Registry::start_with(Some(Auth::Token {
        realm: format!("http://127.0.0.1:{}/token", ts.port),
        service: SERVICE.into(),
        issuer: ISSUER.into(),
        cert_pem: ts.cert_pem.clone(),
    }))?;
    reg.creds = Some(("alice".into(), "s3cret".into()));
    let work = tempfile::tempdir()?;
    let layout = work.path().join("layout");
    write_layout(&layout, "t1", None, &[busybox_image("amd64")?])?;
    // skopeo (a real client) goes through the same token server to push.
    let push = {
        let reg = &reg;
        let layout = layout.clone();
        tokio::task::block_in_place(move || reg.push(&layout, "t1", "private/tok"))
    };
    push?;
    let pushes = ts.requests.load(Ordering::SeqCst);
    assert!(pushes > 0, "skopeo fetched tokens");

    let store = store_in(work.path())?;
    let puller = Puller::new(store.clone())?;
    let r = format!("{}/private/tok:t1", reg.host());
    let opts = |c: Option<(&str, &str)>| PullOptions {
        platform: Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
        },
        credentials: c
            .map(|(u, p)| {
                vec![Credential {
                    username: u.into(),
                    password: p.into(),
                }]
            })
            .unwrap_or_default(),
        ..Default::default()
    };
    // Anonymous: the token grants nothing, the registry says 401 again.
    let err = puller.pull(&r, &opts(None)).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    // A wrong password: the token server refuses.
    let err = puller
        .pull(&r, &opts(Some(("alice", "wrong"))))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(
        err.to_string().contains("failed to fetch oauth token"),
        "{err}"
    );
    assert!(store.get(&r)?.is_none());
    // The right one: the token is fetched and used for the manifest and the blobs.
    let before = ts.requests.load(Ordering::SeqCst);
    let pulled = puller.pull(&r, &opts(Some(("alice", "s3cret")))).await?;
    assert_eq!(
        ts.requests.load(Ordering::SeqCst),
        before + 1,
        "one token for the whole pull"
    );
    assert!(pulled.downloaded > 500_000);
    assert!(
        store.lower_dirs(&pulled.image)[0]
            .join("bin/busybox")
            .is_file()
    );
    Ok(())
}
