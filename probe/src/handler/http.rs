//! `httpGet` [pkg/probe/http/http.go, request.go]: one GET over a fresh connection, the
//! kubelet's redirect rules, a 10 KiB body limit, Go-shaped outputs.
//!
//! - Request: `GET` to `scheme://host:port/path` (host defaults to the pod IP), HTTP/1.1, or
//!   HTTP/2 over TLS when the server picks `h2` by ALPN (as Go's transport); headers added as
//!   given; `User-Agent: kube-probe/<major>.<minor>` and `Accept: */*` unless given (an empty
//!   `Accept` removes it, an empty `User-Agent` sends none); a `Host` header sets the request
//!   host; `Connection: close`; no proxy, no compression, TLS without verification.
//! - Redirects (301, 302, 303, 307, 308 with a `Location`): followed when the target hostname
//!   equals the original request's; another host's redirect is not followed and the 3xx becomes
//!   the final response. Go's client makes at most 10 requests: the 10th redirect in a row is
//!   the error `stopped after 10 redirects`, a failure.
//! - Verdict: 2xx success with the body as output; 3xx warning with
//!   `Probe terminated redirects, Response body: <body>`; anything else failure with
//!   `HTTP probe failed with statuscode: <code>`; a transport error or timeout is a failure with
//!   Go's error text; a body read error (including the timeout while reading the body) is an
//!   *error*, which the prober retries and then discards, exactly as the kubelet does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::time::{Instant, timeout_at};

use super::{HandlerEnv, HandlerOutput, dial, join_host_port};
use crate::error::HandlerError;
use crate::spec::{HttpGetSpec, Scheme};
use crate::types::HandlerResult;
use gofmt::quote;

/// Most body bytes read from a response (`maxRespBodyLength = 10 KiB`).
pub const MAX_BODY: usize = 10 * 1024;
/// Most requests one probe makes (Go's default redirect policy: stop after 10 requests).
const MAX_REQUESTS: usize = 10;

/// Accepts any server certificate, as the kubelet's `InsecureSkipVerify`; the handshake
/// signature is still checked against the presented certificate.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A rustls client configuration (ring provider) that verifies no certificate.
pub fn insecure_tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    let mut config = config;
    // As Go's transport with HTTP/2 configured: offer h2, fall back to HTTP/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Where one request goes.
#[derive(Debug, Clone)]
struct Target {
    scheme: Scheme,
    /// Hostname without brackets; empty means the local system (Go dials `:port` locally).
    host: String,
    port: u16,
    /// Request target (origin form), e.g. `/healthz?x=1`.
    request_target: String,
    /// The URL as Go prints it in errors.
    display: String,
}

impl Target {
    fn authority(&self) -> String {
        join_host_port(&self.host, self.port)
    }
}

fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b)
}

fn is_query_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"\"<>\\^`{|}#".contains(&b)
}

/// Percent-encodes bytes outside `keep`, leaving valid `%XX` escapes alone.
fn escape(s: &str, keep: fn(u8) -> bool) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let valid_escape = c == b'%'
            && b.get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        if keep(c) || valid_escape {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
        i += 1;
    }
    out
}

/// The kubelet's `formatURL`: the path is parsed as a URL reference, so a query is kept.
fn initial_target(scheme: Scheme, host: &str, port: u16, path: &str) -> Target {
    let path = path.split('#').next().unwrap_or_default();
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut epath = escape(path, is_path_byte);
    if !epath.is_empty() && !epath.starts_with('/') {
        epath.insert(0, '/');
    }
    let query = query.map(|q| escape(q, is_query_byte));
    let q = query
        .as_deref()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let hostport = join_host_port(host, port);
    Target {
        scheme,
        host: host.to_string(),
        port,
        request_target: format!("{}{q}", if epath.is_empty() { "/" } else { &epath }),
        display: format!("{}://{hostport}{epath}{q}", scheme.as_str()),
    }
}

fn target_from_url(u: &url::Url) -> Result<Target, String> {
    let scheme = match u.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(format!("unsupported protocol scheme {}", quote(other))),
    };
    let host = match u.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    let port = u.port_or_known_default().unwrap_or(80);
    let query = u.query().map(|q| format!("?{q}")).unwrap_or_default();
    Ok(Target {
        scheme,
        host,
        port,
        request_target: format!("{}{query}", u.path()),
        display: u.as_str().to_string(),
    })
}

/// Headers of a probe request, prepared once per probe from `httpHeaders`.
struct Prepared {
    /// The `Host` header's value, which sets the request host.
    host: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// Builds the header list the way Go's `newProbeRequest` and `Request.write` do. An invalid
/// name or value is Go's transport error text.
fn prepare_headers(given: &[(String, String)], user_agent: &str) -> Result<Prepared, String> {
    let is = |n: &str, want: &str| n.eq_ignore_ascii_case(want);
    let mut host = None;
    let mut ua: Option<&str> = None;
    let mut accept_first: Option<&str> = None;
    for (n, v) in given {
        if is(n, "host") && host.is_none() {
            host = Some(v.trim().to_string());
        }
        if is(n, "user-agent") && ua.is_none() {
            ua = Some(v.as_str());
        }
        if is(n, "accept") && accept_first.is_none() {
            accept_first = Some(v.as_str());
        }
    }
    let drop_accept = accept_first == Some("");
    let mut headers = Vec::with_capacity(given.len() + 3);
    let ua = ua.map(str::trim).unwrap_or(user_agent);
    if !ua.is_empty() {
        let v = HeaderValue::from_bytes(ua.as_bytes()).map_err(|_| {
            format!(
                "net/http: invalid header field value for {}",
                quote("User-Agent")
            )
        })?;
        headers.push((http::header::USER_AGENT, v));
    }
    let mut rest = Vec::with_capacity(given.len() + 1);
    for (n, v) in given {
        let skip = [
            "host",
            "user-agent",
            "content-length",
            "transfer-encoding",
            "trailer",
        ];
        if skip.iter().any(|s| is(n, s)) || (drop_accept && is(n, "accept")) {
            continue;
        }
        let name = HeaderName::from_bytes(n.as_bytes())
            .map_err(|_| format!("net/http: invalid header field name {}", quote(n)))?;
        let value = HeaderValue::from_bytes(v.trim().as_bytes())
            .map_err(|_| format!("net/http: invalid header field value for {}", quote(n)))?;
        rest.push((name, value));
    }
    if accept_first.is_none() {
        rest.push((http::header::ACCEPT, HeaderValue::from_static("*/*")));
    }
    // Go writes the header map sorted by key.
    rest.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let wants_close = rest
        .iter()
        .any(|(n, v)| n == http::header::CONNECTION && v.as_bytes().eq_ignore_ascii_case(b"close"));
    headers.extend(rest);
    if !wants_close {
        headers.push((http::header::CONNECTION, HeaderValue::from_static("close")));
    }
    let host = host.filter(|h| !h.is_empty());
    // Go refuses to write a request whose Host is not a valid header value.
    if host
        .as_deref()
        .is_some_and(|h| HeaderValue::from_str(h).is_err())
    {
        return Err("http: invalid Host header".to_string());
    }
    Ok(Prepared { host, headers })
}

/// What one request/response exchange ended with.
enum Hop {
    /// Follow a redirect to this target with this request host.
    Redirect(Target, Option<String>),
    /// The final response.
    Final {
        status: u16,
        body: Result<Vec<u8>, String>,
    },
    /// A transport error (Go's error text, without the `Get "<url>": ` prefix).
    Failed(String),
    /// The deadline passed before the response headers.
    HeadersTimeout,
}

enum Decision {
    Follow(Target, Option<String>),
    Final,
    Error(String),
}

/// The kubelet's redirect policy (`followNonLocalRedirects = false`) on top of Go's client.
fn decide(
    status: u16,
    location: Option<&str>,
    current: &Target,
    original_host: &str,
    requests: usize,
    host_override: Option<&String>,
) -> Decision {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return Decision::Final;
    }
    let Some(loc) = location.filter(|l| !l.is_empty()) else {
        return Decision::Final;
    };
    let base = match url::Url::parse(&current.display) {
        Ok(b) => b,
        Err(e) => {
            return Decision::Error(format!(
                "failed to parse Location header {}: {e}",
                quote(loc)
            ));
        }
    };
    let next = match base.join(loc) {
        Ok(u) => u,
        Err(e) => {
            return Decision::Error(format!(
                "failed to parse Location header {}: {e}",
                quote(loc)
            ));
        }
    };
    let next = match target_from_url(&next) {
        Ok(t) => t,
        Err(e) => return Decision::Error(e),
    };
    if !next.host.eq_ignore_ascii_case(original_host) {
        return Decision::Final;
    }
    if requests >= MAX_REQUESTS {
        return Decision::Error("stopped after 10 redirects".to_string());
    }
    // Go keeps a custom Host only through a relative redirect.
    let relative = url::Url::parse(loc).is_err();
    let host = host_override
        .filter(|h| relative && **h != current.authority())
        .cloned();
    Decision::Follow(next, host)
}

/// Polls `fut` while also driving the connection future until `fut` is done.
async fn driven<F: Future, C: Future + Unpin>(
    conn: &mut C,
    conn_done: &mut bool,
    fut: F,
) -> F::Output {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            biased;
            r = &mut fut => return r,
            _ = &mut *conn, if !*conn_done => *conn_done = true,
        }
    }
}

fn hyper_error_text(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        "EOF".to_string()
    } else {
        e.to_string()
    }
}

async fn read_body<C: Future + Unpin>(
    body: &mut Incoming,
    conn: &mut C,
    conn_done: &mut bool,
    deadline: Instant,
) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let reading = async {
        while buf.len() < MAX_BODY {
            match body.frame().await {
                None => break,
                Some(Err(e)) => {
                    return Err(if e.is_incomplete_message() {
                        "unexpected EOF".to_string()
                    } else {
                        e.to_string()
                    });
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = MAX_BODY - buf.len();
                        buf.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
            }
        }
        Ok(())
    };
    match timeout_at(deadline, driven(conn, conn_done, reading)).await {
        Err(_) => Err(
            "context deadline exceeded (Client.Timeout or context cancellation while reading body)"
                .to_string(),
        ),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(buf),
    }
}

type SendFuture =
    Pin<Box<dyn Future<Output = Result<hyper::Response<Incoming>, hyper::Error>> + Send>>;
type ConnFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Boxes a request future and its connection driver, so HTTP/1.1 and HTTP/2 share one path.
fn boxed<S, C>(send: S, conn: C) -> (SendFuture, ConnFuture)
where
    S: Future<Output = Result<hyper::Response<Incoming>, hyper::Error>> + Send + 'static,
    C: Future + Send + 'static,
{
    (
        Box::pin(send),
        Box::pin(async move {
            let _ = conn.await;
        }),
    )
}

/// One request over `io` (already connected, TLS done), HTTP/2 when ALPN chose it.
async fn exchange<IO>(
    io: IO,
    h2: bool,
    target: &Target,
    prepared: &Prepared,
    host_override: Option<&String>,
    deadline: Instant,
    decide: impl Fn(u16, Option<&str>) -> Decision,
) -> Hop
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let host = match host_override {
        Some(h) => h.clone(),
        None => target.authority(),
    };
    // HTTP/1.1: origin form plus `Host`; HTTP/2: the host goes in `:authority`, and
    // connection-specific headers are not allowed.
    let mut builder = if h2 {
        let uri = format!(
            "{}://{host}{}",
            target.scheme.as_str(),
            target.request_target
        );
        hyper::Request::get(uri)
    } else {
        hyper::Request::get(target.request_target.as_str())
    };
    if let Some(headers) = builder.headers_mut() {
        if !h2 && let Ok(h) = HeaderValue::from_str(&host) {
            headers.insert(http::header::HOST, h);
        }
        for (n, v) in &prepared.headers {
            if !(h2 && n == http::header::CONNECTION) {
                headers.append(n.clone(), v.clone());
            }
        }
    }
    let req = match builder.body(Empty::<Bytes>::new()) {
        Ok(r) => r,
        Err(e) => return Hop::Failed(e.to_string()),
    };
    let handshake = if h2 {
        let hs = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake::<_, Empty<Bytes>>(io);
        timeout_at(deadline, hs)
            .await
            .map(|r| r.map(|(mut s, conn)| boxed(async move { s.send_request(req).await }, conn)))
    } else {
        let hs = hyper::client::conn::http1::Builder::new()
            .title_case_headers(true)
            .handshake::<_, Empty<Bytes>>(io);
        timeout_at(deadline, hs)
            .await
            .map(|r| r.map(|(mut s, conn)| boxed(async move { s.send_request(req).await }, conn)))
    };
    let Ok(handshake) = handshake else {
        return Hop::HeadersTimeout;
    };
    let (send, mut conn) = match handshake {
        Err(e) => return Hop::Failed(hyper_error_text(&e)),
        Ok(pair) => pair,
    };
    let mut conn_done = false;
    let resp = timeout_at(deadline, driven(&mut conn, &mut conn_done, send)).await;
    let resp = match resp {
        Err(_) => return Hop::HeadersTimeout,
        Ok(Err(e)) => return Hop::Failed(hyper_error_text(&e)),
        Ok(Ok(r)) => r,
    };
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok());
    match decide(status, location) {
        Decision::Follow(next, host) => Hop::Redirect(next, host),
        Decision::Error(e) => Hop::Failed(e),
        Decision::Final => {
            let mut body = resp.into_body();
            let body = read_body(&mut body, &mut conn, &mut conn_done, deadline).await;
            Hop::Final { status, body }
        }
    }
}

/// Runs an `httpGet` probe against a pod with IP `pod_ip`.
pub async fn probe(
    env: &HandlerEnv,
    spec: &HttpGetSpec,
    pod_ip: &str,
    timeout: Duration,
) -> HandlerOutput {
    let port = match &spec.port {
        Ok(p) => *p,
        Err(e) => return HandlerOutput::error(HandlerResult::Unknown, e.clone()),
    };
    let host = if spec.host.is_empty() {
        pod_ip
    } else {
        &spec.host
    };
    let mut target = initial_target(spec.scheme, host, port, &spec.path);
    let deadline = Instant::now() + timeout;
    let fail = |t: &Target, msg: &str| {
        HandlerOutput::new(
            HandlerResult::Failure,
            format!("Get {}: {msg}", quote(&t.display)),
        )
    };
    let prepared = match prepare_headers(&spec.headers, &env.user_agent) {
        Ok(p) => p,
        Err(e) => return fail(&target, &e),
    };
    let original_host = target.host.clone();
    let mut host_override = prepared.host.clone();
    let mut requests = 0;
    let timeout_msg = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
    loop {
        requests += 1;
        let tcp = match dial(&target.host, target.port, deadline).await {
            Ok(s) => s,
            Err(super::DialError::Timeout { .. }) => return fail(&target, timeout_msg),
            Err(e) => return fail(&target, &e.to_string()),
        };
        let decide = |status: u16, location: Option<&str>| {
            decide(
                status,
                location,
                &target,
                &original_host,
                requests,
                host_override.as_ref(),
            )
        };
        let hop = match target.scheme {
            Scheme::Http => {
                exchange(
                    TokioIo::new(tcp),
                    false,
                    &target,
                    &prepared,
                    host_override.as_ref(),
                    deadline,
                    decide,
                )
                .await
            }
            Scheme::Https => {
                let name = match target.host.parse::<std::net::IpAddr>() {
                    Ok(ip) => ServerName::IpAddress(ip.into()),
                    Err(_) => match ServerName::try_from(target.host.clone()) {
                        Ok(n) => n,
                        Err(e) => return fail(&target, &format!("tls: {e}")),
                    },
                };
                let connector = tokio_rustls::TlsConnector::from(env.tls.clone());
                let tls = match timeout_at(deadline, connector.connect(name, tcp)).await {
                    Err(_) => return fail(&target, timeout_msg),
                    Ok(Err(e)) => return fail(&target, &e.to_string()),
                    Ok(Ok(s)) => s,
                };
                // Go's transport offers h2 by ALPN and speaks it when the server agrees.
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                exchange(
                    TokioIo::new(tls),
                    h2,
                    &target,
                    &prepared,
                    host_override.as_ref(),
                    deadline,
                    decide,
                )
                .await
            }
        };
        match hop {
            Hop::Redirect(next, host) => {
                target = next;
                host_override = host;
            }
            Hop::Failed(e) => return fail(&target, &e),
            Hop::HeadersTimeout => return fail(&target, timeout_msg),
            Hop::Final { status, body } => {
                let body = match body {
                    Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                    Err(e) => {
                        return HandlerOutput::error(
                            HandlerResult::Failure,
                            HandlerError::BodyRead(e),
                        );
                    }
                };
                return classify(status, body);
            }
        }
    }
}

/// `DoHTTPProbe`'s status classification.
fn classify(status: u16, body: String) -> HandlerOutput {
    match status {
        200..=299 => HandlerOutput::new(HandlerResult::Success, body),
        300..=399 => HandlerOutput::new(
            HandlerResult::Warning,
            format!("Probe terminated redirects, Response body: {body}"),
        ),
        code => HandlerOutput::new(
            HandlerResult::Failure,
            format!("HTTP probe failed with statuscode: {code}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_request_target_like_format_url() {
        let t = initial_target(Scheme::Http, "10.0.0.1", 8080, "/healthz?x=1#frag");
        assert_eq!(t.display, "http://10.0.0.1:8080/healthz?x=1");
        assert_eq!(t.request_target, "/healthz?x=1");
        let t = initial_target(Scheme::Https, "::1", 443, "");
        assert_eq!(t.display, "https://[::1]:443");
        assert_eq!(t.request_target, "/");
        let t = initial_target(Scheme::Http, "h", 1, "ready now");
        assert_eq!(t.request_target, "/ready%20now");
        let t = initial_target(Scheme::Http, "h", 1, "/a%2Fb");
        assert_eq!(t.request_target, "/a%2Fb");
    }

    #[test]
    fn headers_follow_go_rules() {
        let h = |pairs: &[(&str, &str)]| {
            let given: Vec<(String, String)> = pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect();
            let p = prepare_headers(&given, "kube-probe/1.35").unwrap_or_else(|e| panic!("{e}"));
            let list: Vec<String> = p
                .headers
                .iter()
                .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?")))
                .collect();
            (p.host, list)
        };
        let (host, list) = h(&[]);
        assert_eq!(host, None);
        assert_eq!(
            list,
            [
                "user-agent: kube-probe/1.35",
                "accept: */*",
                "connection: close"
            ]
        );
        let (host, list) = h(&[
            ("host", "vhost.example"),
            ("X-B", "1"),
            ("x-a", "2"),
            ("X-B", "3"),
        ]);
        assert_eq!(host.as_deref(), Some("vhost.example"));
        assert_eq!(
            list,
            [
                "user-agent: kube-probe/1.35",
                "accept: */*",
                "x-a: 2",
                "x-b: 1",
                "x-b: 3",
                "connection: close"
            ]
        );
        let (_, list) = h(&[("User-Agent", ""), ("Accept", "")]);
        assert_eq!(list, ["connection: close"]);
        let (_, list) = h(&[("user-agent", "mine"), ("accept", "text/plain")]);
        assert_eq!(
            list,
            [
                "user-agent: mine",
                "accept: text/plain",
                "connection: close"
            ]
        );
        let bad = prepare_headers(&[("Host".into(), "a\u{7f}b".into())], "ua");
        assert_eq!(bad.err().as_deref(), Some("http: invalid Host header"));
        let bad = prepare_headers(&[("bad name".into(), "v".into())], "ua");
        assert_eq!(
            bad.err().as_deref(),
            Some("net/http: invalid header field name \"bad name\"")
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any `httpGet.path` yields a request target hyper accepts (no panic, no bad URI).
        #[test]
        fn any_path_gives_a_valid_request_target(path in ".{0,64}") {
            let t = initial_target(Scheme::Http, "10.0.0.1", 8080, &path);
            prop_assert!(t.request_target.parse::<http::Uri>().is_ok(), "{:?}", t.request_target);
            prop_assert!(url::Url::parse(&t.display).is_ok(), "{:?}", t.display);
        }

        /// Any header list is either prepared or refused with Go's error text, never a panic.
        #[test]
        fn any_headers_prepare_or_error(name in ".{0,12}", value in ".{0,24}") {
            match prepare_headers(&[(name, value)], "kube-probe/1.35") {
                Ok(p) => prop_assert!(!p.headers.is_empty()),
                Err(e) => prop_assert!(
                    e.starts_with("net/http: invalid header field") || e == "http: invalid Host header"
                ),
            }
        }
    }

    #[test]
    fn non_ascii_header_values_are_sent_as_go_does() {
        let p = prepare_headers(&[("X-Name".into(), "café".into())], "ua");
        assert!(p.is_ok());
    }
}
