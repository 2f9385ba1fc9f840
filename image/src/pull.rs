//! Pulling from a registry over the OCI distribution API (`/v2/<name>/manifests/<ref>`,
//! `/v2/<name>/blobs/<digest>`), into the [`Store`].
//!
//! Flow of [`Puller::pull`]: the reference is normalised as containerd's CRI does
//! (`ParseDockerRef`); the manifest (or index) is fetched with every media type in `Accept` and
//! verified against the digest asked for or announced (`Docker-Content-Digest`); an index is
//! resolved to this node's platform (Go's names: `linux/amd64`); the config and each layer are
//! streamed to `ingest/` through a bounded channel to a blocking writer that hashes as it writes
//! and renames only a verified blob (three transfers at once, as containerd's default); layers
//! are unpacked (also verified, against the config's diff-ids); only then is the reference
//! recorded. Content already stored is not fetched again, which is what makes an interrupted
//! pull resume.
//!
//! Auth: anonymous first; on `401` the `WWW-Authenticate` challenge decides — `Basic` sends the
//! caller's credentials, `Bearer` fetches a token from the realm (with the credentials as Basic
//! auth if there are any, anonymously otherwise) for `repository:<path>:pull` and retries. With
//! several credentials (imagePullSecrets) each is tried in turn, as the kubelet does.
//!
//! Transport: HTTPS with the OS's roots; plain HTTP only for loopback registries (`localhost`,
//! `127.0.0.0/8`, `::1`), as Docker allows, or registries the caller lists as insecure. An
//! endpoint may have its own TLS settings ([`EndpointTls`]: a CA to trust besides the OS's,
//! a client certificate, or no verification at all), as containerd's per-host configuration
//! gives them; a request goes out with the settings of the `host[:port]` it is sent to.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt, TryStreamExt};
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;

use crate::config::ImageConfigFile;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::keyring::Credential;
use crate::manifest::{self, Descriptor, Document, Platform};
use crate::reference::Reference;
use crate::store::{ImageRecord, LayerRecord, Store, chain_ids};
use crate::unpack;

/// How many blobs of one image are transferred at once (containerd's default is 3).
const CONCURRENT_TRANSFERS: usize = 3;
/// Chunks in flight between the network and the blob writer, per transfer.
const CHUNKS_IN_FLIGHT: usize = 16;
/// Redirects followed for one blob.
const MAX_REDIRECTS: usize = 5;
/// A registry that does not accept the connection within this long is unreachable.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest wait for response headers, or between two pieces of a body: a stalled transfer is
/// an error (the next pull resumes), never a hang. Generous, as containerd has no limit.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// What a pull may use.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to resolve indexes to.
    pub platform: Platform,
    /// Credentials to try in order (from imagePullSecrets via [`crate::keyring::Keyring`]);
    /// empty means anonymous.
    pub credentials: Vec<Credential>,
    /// Registries (`host[:port]`) that may be reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Registries (`host[:port]`) with TLS settings of their own (`configs.<host>.tls`):
    /// reached over HTTPS even on loopback.
    pub tls_registries: Vec<String>,
    /// Mirror endpoints for this reference's registry (`http://127.0.0.1:5000`,
    /// `https://mirror.example`), tried in order before the registry itself, as k3s's
    /// `registries.yaml` `mirrors.<registry>.endpoint` list is; the scheme is as written, so a
    /// configured mirror may be plain HTTP. The repository path is unchanged
    /// (`docker.io/library/nginx` asks the mirror for `/v2/library/nginx/…`).
    pub mirrors: Vec<String>,
    /// k3s's `mirrors.<registry>.rewrite`: (regular expression, replacement with `$1`…) on
    /// the repository path, applied in order (the first that matches) for mirror endpoints
    /// only, never the registry itself.
    pub rewrites: Vec<(regex::Regex, String)>,
    /// k3s's `configs.<host>.auth`: the credential for an endpoint's `host[:port]`, tried
    /// before [`PullOptions::credentials`] there.
    pub endpoint_credentials: BTreeMap<String, Credential>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            credentials: Vec::new(),
            insecure_registries: Vec::new(),
            tls_registries: Vec::new(),
            mirrors: Vec::new(),
            rewrites: Vec::new(),
            endpoint_credentials: BTreeMap::new(),
        }
    }
}

/// The repository path an endpoint is asked for: the first matching rewrite applied (mirror
/// endpoints only).
fn endpoint_path(reference: &Reference, opts: &PullOptions, mirror: bool) -> String {
    let path = reference.path();
    if mirror {
        for (re, replacement) in &opts.rewrites {
            if re.is_match(path) {
                return re.replace(path, replacement.as_str()).into_owned();
            }
        }
    }
    path.to_string()
}

/// `host[:port]` of an endpoint URL.
fn endpoint_host(endpoint: &str) -> &str {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// A finished pull.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The normalised reference pulled (`docker.io/library/busybox:latest`).
    pub reference: Reference,
    /// What the store recorded.
    pub image: ImageRecord,
    /// Bytes transferred from the registry by this pull (0 if everything was present).
    pub downloaded: u64,
}

type PullFuture = Shared<BoxFuture<'static, std::result::Result<Pulled, Error>>>;

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// TLS settings of one endpoint `host[:port]` (k3s's `registries.yaml`
/// `configs.<host>.tls`, as containerd applies them to that host only).
#[derive(Clone, Default)]
pub struct EndpointTls {
    /// PEM CA certificates trusted for this endpoint besides the OS's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate chain and its private key (PEM) presented to this endpoint.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Accept any server certificate (containerd's `insecure_skip_verify`): the connection
    /// is encrypted but the server is not authenticated.
    pub insecure_skip_verify: bool,
}

impl std::fmt::Debug for EndpointTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("EndpointTls")
            .field("ca_pem", &self.ca_pem.is_some())
            .field("client_identity", &self.client_identity.is_some())
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// The registry client over a store. Cheap to clone; clones share in-flight pulls.
#[derive(Clone)]
pub struct Puller {
    store: Store,
    client: HttpClient,
    /// Endpoints with their own TLS settings, by `host[:port]` (the port only when the URL
    /// names one that is not the scheme's default).
    endpoints: Arc<HashMap<String, HttpClient>>,
    inflight: Arc<Mutex<HashMap<String, PullFuture>>>,
}

impl std::fmt::Debug for Puller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Puller")
            .field("store", &self.store)
            .finish()
    }
}

impl Puller {
    /// A client with the OS's trust roots.
    pub fn new(store: Store) -> Result<Puller> {
        Puller::with_extra_roots(store, &[])
    }

    /// A client trusting the OS's roots and the CA certificates in `pem_bundles` for every
    /// registry.
    pub fn with_extra_roots(store: Store, pem_bundles: &[&[u8]]) -> Result<Puller> {
        let mut roots = native_roots();
        for bundle in pem_bundles {
            add_pem_roots(&mut roots, bundle)?;
        }
        Puller::build(store, roots, &BTreeMap::new())
    }

    /// A client trusting the OS's roots, with `endpoints`' own TLS settings for their
    /// `host[:port]` (the key as in `registries.yaml`: the port only when it is not the
    /// scheme's default).
    pub fn with_endpoint_tls(
        store: Store,
        endpoints: &BTreeMap<String, EndpointTls>,
    ) -> Result<Puller> {
        Puller::build(store, native_roots(), endpoints)
    }

    fn build(
        store: Store,
        roots: rustls::RootCertStore,
        endpoints: &BTreeMap<String, EndpointTls>,
    ) -> Result<Puller> {
        if roots.is_empty() {
            // Plain-HTTP loopback registries still work; HTTPS ones will fail to verify.
            tracing::warn!("no trust roots: HTTPS registries cannot be verified");
        }
        let mut clients = HashMap::new();
        for (host, t) in endpoints {
            let at = |e: Error| Error::Format(format!("{host}: {e}"));
            let mut own = roots.clone();
            if let Some(pem) = &t.ca_pem {
                add_pem_roots(&mut own, pem).map_err(at)?;
            }
            if t.insecure_skip_verify {
                tracing::warn!(
                    endpoint = %host,
                    "insecure_skip_verify: this registry's certificate is not verified"
                );
            }
            let identity = match &t.client_identity {
                Some((cert, key)) => Some(client_identity(cert, key).map_err(at)?),
                None => None,
            };
            let config = tls_config(own, identity, t.insecure_skip_verify).map_err(at)?;
            clients.insert(host.clone(), http_client(config));
        }
        Ok(Puller {
            store,
            client: http_client(tls_config(roots, None, false)?),
            endpoints: Arc::new(clients),
            inflight: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The client for a request to `url`: its endpoint's, else the default one.
    fn client_for(&self, url: &str) -> &HttpClient {
        config_key(url)
            .and_then(|k| self.endpoints.get(&k))
            .unwrap_or(&self.client)
    }

    /// The store pulled into.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Pulls `image` (as written in a pod spec). Concurrent pulls of the same reference with
    /// the same credentials share one transfer.
    pub async fn pull(&self, image: &str, opts: &PullOptions) -> Result<Pulled> {
        let reference =
            Reference::parse_docker_ref(image).map_err(|reason| Error::InvalidReference {
                image: image.to_string(),
                reason,
            })?;
        // Pulls share a transfer only with the same credentials (a pod must not get an image
        // through another pod's secret).
        let creds: Vec<String> = opts
            .credentials
            .iter()
            .map(|c| {
                Digest::sha256_of(format!("{}:{}", c.username, c.password).as_bytes()).to_string()
            })
            .collect();
        let rewrites: Vec<String> = opts
            .rewrites
            .iter()
            .map(|(re, to)| format!("{re}={to}"))
            .collect();
        let endpoint_creds: Vec<String> = opts
            .endpoint_credentials
            .iter()
            .map(|(h, c)| {
                Digest::sha256_of(format!("{h}\0{}:{}", c.username, c.password).as_bytes())
                    .to_string()
            })
            .collect();
        let key = format!(
            "{reference}\0{}\0{}\0{}\0{}\0{}",
            creds.join("\0"),
            opts.platform,
            opts.mirrors.join(" "),
            rewrites.join(" "),
            endpoint_creds.join(" ")
        );
        let fut = {
            let mut inflight = self.inflight.lock();
            if let Some(f) = inflight.get(&key) {
                f.clone()
            } else {
                let this = self.clone();
                let opts = opts.clone();
                let r = reference.clone();
                let k = key.clone();
                let f = async move {
                    let out = this.pull_uncached(r, &opts).await;
                    this.inflight.lock().remove(&k);
                    out
                }
                .boxed()
                .shared();
                inflight.insert(key, f.clone());
                f
            }
        };
        fut.await
    }

    async fn pull_uncached(&self, reference: Reference, opts: &PullOptions) -> Result<Pulled> {
        let creds: Vec<Option<&Credential>> = if opts.credentials.is_empty() {
            vec![None]
        } else {
            opts.credentials.iter().map(Some).collect()
        };
        // Everything this pull finds present or stores is leased until it is recorded.
        let store = {
            let s = self.store.clone();
            blocking(move || s.leased()).await?
        };
        let mut endpoints: Vec<(String, bool)> =
            opts.mirrors.iter().map(|m| (m.clone(), true)).collect();
        endpoints.push((default_endpoint(reference.domain(), opts), false));
        // The error reported: the most telling one — a registry's "not found" or "unauthorized"
        // over a later endpoint's network failure (an air-gapped node's upstream).
        let mut reported: Option<Error> = None;
        for (endpoint, mirror) in &endpoints {
            let path = endpoint_path(&reference, opts, *mirror);
            let mut creds = creds.clone();
            if let Some(c) = opts.endpoint_credentials.get(endpoint_host(endpoint)) {
                if creds.iter().all(Option::is_none) {
                    creds.clear();
                }
                creds.insert(0, Some(c));
            }
            for cred in &creds {
                let session = Session::new(
                    self,
                    store.clone(),
                    &reference,
                    &path,
                    endpoint,
                    opts,
                    *cred,
                )?;
                match session.pull().await {
                    Ok(p) => return Ok(p),
                    // Another credential or endpoint may serve it.
                    Err(e @ (Error::Unauthorized { .. } | Error::NotFound { .. })) => {
                        if !matches!(reported, Some(Error::NotFound { .. })) {
                            reported = Some(e);
                        }
                    }
                    Err(e @ (Error::Network { .. } | Error::Registry { .. })) => {
                        tracing::debug!(%endpoint, error = %e, "endpoint failed; trying the next");
                        if reported.is_none() {
                            reported = Some(e);
                        }
                        break; // the next credential would fail the same way here
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(reported.unwrap_or_else(|| Error::Unauthorized {
            reference: reference.to_string(),
            detail: "no credentials accepted".into(),
        }))
    }
}

/// The registry's own endpoint: Docker Hub's API host for `docker.io`; HTTPS unless the
/// registry is on loopback (and has no TLS settings) or listed as insecure.
fn default_endpoint(domain: &str, opts: &PullOptions) -> String {
    let host = if domain == crate::reference::DEFAULT_DOMAIN {
        "registry-1.docker.io"
    } else {
        domain
    };
    let tls = opts.tls_registries.iter().any(|r| r == domain);
    let plain = (is_loopback_registry(domain) && !tls)
        || opts.insecure_registries.iter().any(|r| r == domain);
    format!("{}://{host}", if plain { "http" } else { "https" })
}

/// Whether `host[:port]` names a loopback registry.
pub fn is_loopback_registry(domain: &str) -> bool {
    let host = if let Some(rest) = domain.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        domain.split(':').next().unwrap_or("")
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One registry conversation: one reference, one credential.
struct Session<'a> {
    puller: &'a Puller,
    reference: Reference,
    /// The puller's store, with this pull's lease.
    store: Store,
    opts: &'a PullOptions,
    cred: Option<&'a Credential>,
    base: String,
    /// The repository path at this endpoint (rewritten for a mirror).
    path: String,
    // Shared by the transfers of one pull, which run concurrently; replaced when a token
    // expires mid-pull.
    auth: Mutex<Option<HeaderValue>>,
    downloaded: std::sync::atomic::AtomicU64,
}

impl<'a> Session<'a> {
    fn add_downloaded(&self, n: u64) {
        self.downloaded
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn new(
        puller: &'a Puller,
        store: Store,
        reference: &Reference,
        path: &str,
        endpoint: &str,
        opts: &'a PullOptions,
        cred: Option<&'a Credential>,
    ) -> Result<Session<'a>> {
        let endpoint = endpoint.trim_end_matches('/');
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::Format(format!(
                "registry endpoint {endpoint:?} must start with http:// or https://"
            )));
        }
        Ok(Session {
            puller,
            store,
            reference: reference.clone(),
            opts,
            cred,
            base: format!("{endpoint}/v2/{path}"),
            path: path.to_string(),
            auth: Mutex::new(None),
            downloaded: std::sync::atomic::AtomicU64::new(0),
        })
    }

    async fn pull(&self) -> Result<Pulled> {
        let r = self.reference.clone();
        let wanted = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => crate::reference::DEFAULT_TAG.to_string(),
        };
        let (repo_digest, top) = self.fetch_document(&wanted, r.digest().cloned()).await?;
        let (manifest_digest, manifest) = match top {
            Document::Manifest(m) => (repo_digest.clone(), m),
            Document::Index(idx) => {
                let Some(d) = idx.select(&self.opts.platform).cloned() else {
                    return Err(Error::NoMatchingPlatform {
                        digest: repo_digest,
                        platform: self.opts.platform.to_string(),
                    });
                };
                match self
                    .fetch_document(&d.digest.to_string(), Some(d.digest.clone()))
                    .await?
                {
                    (dg, Document::Manifest(m)) => (dg, m),
                    (dg, Document::Index(_)) => {
                        return Err(Error::Format(format!(
                            "index entry {dg} is itself an index"
                        )));
                    }
                }
            }
        };
        // Config.
        self.fetch_blob(&manifest.config, "config", None).await?;
        let store = self.store.clone();
        let cd = manifest.config.digest.clone();
        let config_bytes =
            blocking(move || store.read_blob(&cd, manifest::MAX_CONFIG_BYTES)).await?;
        let config = ImageConfigFile::parse(&config_bytes)?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::Format(format!(
                "image config lists {} diff-ids for {} layers",
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        // Layers: transferred and unpacked together (fetch_layer); ensure_unpacked then covers
        // a layer whose blob an earlier, interrupted pull had already stored.
        let layers = manifest.layers.clone();
        let mut transfers = Vec::with_capacity(layers.len());
        for (l, diff) in layers.iter().zip(&config.rootfs.diff_ids) {
            transfers.push(self.fetch_layer(l.clone(), diff.clone()));
        }
        let results: Vec<u64> = futures::stream::iter(transfers)
            .buffered(CONCURRENT_TRANSFERS)
            .try_collect()
            .await?;
        self.add_downloaded(results.iter().sum::<u64>());
        let mut jobs = Vec::with_capacity(layers.len());
        for (l, diff) in layers.iter().zip(&config.rootfs.diff_ids) {
            let store = self.store.clone();
            let (l, diff) = (l.clone(), diff.clone());
            jobs.push(blocking(move || ensure_unpacked(&store, &l, &diff)));
        }
        futures::stream::iter(jobs)
            .buffer_unordered(2)
            .try_collect::<Vec<()>>()
            .await?;
        let chains = chain_ids(&config.rootfs.diff_ids);
        let record = ImageRecord {
            repo_digest: repo_digest.clone(),
            manifest: manifest_digest,
            config: manifest.config.digest.clone(),
            layers: layers
                .iter()
                .zip(config.rootfs.diff_ids.iter().zip(chains))
                .map(|(l, (diff, chain))| LayerRecord {
                    digest: l.digest.clone(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                    diff_id: diff.clone(),
                    chain_id: chain,
                })
                .collect(),
            size: manifest.config.size + layers.iter().map(|l| l.size).sum::<u64>(),
        };
        let mut names = vec![r.to_string()];
        let pinned = r.with_digest_only(repo_digest).to_string();
        if !names.contains(&pinned) {
            names.push(pinned);
        }
        let store = self.store.clone();
        let rec = record.clone();
        blocking(move || store.record(&names, &rec)).await?;
        let downloaded = self.downloaded.load(std::sync::atomic::Ordering::Relaxed);
        tracing::info!(image = %r, bytes = downloaded, "pulled");
        Ok(Pulled {
            reference: r,
            image: record,
            downloaded,
        })
    }

    /// Transfers a layer and unpacks it as it arrives (the bytes go both to the blob writer
    /// and, through a bounded channel, to an unpacker), so a pull takes about as long as the
    /// slower of the two rather than their sum. Both checks still hold before anything is
    /// kept: the blob against its digest, the unpacked tree against the diff-id.
    async fn fetch_layer(&self, l: Descriptor, diff: Digest) -> Result<u64> {
        let store = self.store.clone();
        let have = {
            let (store, d, diff) = (store.clone(), l.digest.clone(), diff.clone());
            blocking(move || Ok(store.claim_blob(&d)? || store.claim_layer(&diff)?)).await?
        };
        if have {
            return self.fetch_blob(&l, "layer", None).await;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(CHUNKS_IN_FLIGHT);
        let name = l.digest.to_string();
        let unpack_store = store.clone();
        let unpacker = tokio::task::spawn_blocking(move || {
            let tmp = unpack_store.temp_dir()?;
            let reader = std::io::BufReader::with_capacity(
                256 << 10,
                ChannelReader {
                    rx,
                    cur: Bytes::new(),
                },
            );
            let res = unpack::unpack_stream(reader, &tmp, &name);
            Ok::<_, Error>((tmp, res))
        });
        let transferred = self.fetch_blob(&l, "layer", Some(tx)).await;
        let (tmp, unpacked) = unpacker
            .await
            .map_err(|e| Error::Format(format!("unpack task: {e}")))??;
        let outcome = match (transferred, unpacked) {
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            (Ok(n), Ok(actual)) if actual == diff => Ok(n),
            (Ok(_), Ok(actual)) => Err(Error::DigestMismatch {
                what: format!("layer-{} (uncompressed)", l.digest),
                expected: diff.clone(),
                actual,
            }),
        };
        blocking(move || match outcome {
            Ok(n) => store.commit_layer(&tmp, &diff).map(|()| n),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
            }
        })
        .await
    }

    /// GET with auth handling; returns the response (status 2xx) or the mapped error.
    async fn get(
        &self,
        url: &str,
        accept: Option<&str>,
    ) -> Result<http::Response<hyper::body::Incoming>> {
        let mut url = url.to_string();
        let mut auth = self.auth.lock().clone();
        let origin_host = host_of(&url);
        for _ in 0..=MAX_REDIRECTS {
            let mut req = Request::builder().method(Method::GET).uri(&url);
            if let Some(a) = accept {
                req = req.header(header::ACCEPT, a);
            }
            if let Some(a) = &auth {
                req = req.header(header::AUTHORIZATION, a.clone());
            }
            let req = req
                .body(Empty::new())
                .map_err(|e| Error::Format(format!("bad request URL {url}: {e}")))?;
            let resp = send(self.puller.client_for(&url), req, &url).await?;
            if resp.status().is_redirection()
                && let Some(loc) = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
            {
                let next = url::Url::parse(&url)
                    .and_then(|base| base.join(loc))
                    .map_err(|e| Error::Format(format!("bad redirect {loc:?}: {e}")))?;
                url = next.to_string();
                // Credentials stay with the registry (blob storage redirects are pre-signed).
                if host_of(&url) != origin_host {
                    auth = None;
                }
                continue;
            }
            return Ok(resp);
        }
        Err(Error::Network {
            method: "GET".into(),
            url,
            detail: "stopped after 5 redirects".into(),
        })
    }

    /// GET, authenticating on a 401 challenge once; maps error statuses.
    async fn get_ok(
        &self,
        url: &str,
        accept: Option<&str>,
    ) -> Result<http::Response<hyper::body::Incoming>> {
        let mut resp = self.get(url, accept).await?;
        // A 401 is answered once per request: first contact, or an expired token mid-pull.
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            self.authenticate(&challenge).await?;
            resp = self.get(url, accept).await?;
        }
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let detail = error_detail(resp).await;
        let r = self.reference.to_string();
        Err(match status {
            StatusCode::NOT_FOUND => Error::NotFound { reference: r },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized {
                reference: r,
                detail: format!("{status}{detail}"),
            },
            _ => Error::Registry {
                method: "GET".into(),
                url: url.to_string(),
                status: status.to_string(),
                detail,
            },
        })
    }

    async fn authenticate(&self, challenge: &str) -> Result<()> {
        let unauthorized = |detail: String| Error::Unauthorized {
            reference: self.reference.to_string(),
            detail,
        };
        let (scheme, params) = parse_challenge(challenge);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let Some(c) = self.cred else {
                    return Err(unauthorized(
                        "401 Unauthorized (registry requires basic auth, no credentials given)"
                            .into(),
                    ));
                };
                *self.auth.lock() = Some(basic(c)?);
                Ok(())
            }
            "bearer" => {
                let realm = params.get("realm").ok_or_else(|| {
                    unauthorized(format!("bearer challenge without realm: {challenge}"))
                })?;
                let mut u = url::Url::parse(realm)
                    .map_err(|e| unauthorized(format!("bad token realm {realm:?}: {e}")))?;
                {
                    let mut q = u.query_pairs_mut();
                    if let Some(s) = params.get("service") {
                        q.append_pair("service", s);
                    }
                    let scope = params
                        .get("scope")
                        .cloned()
                        .unwrap_or_else(|| format!("repository:{}:pull", self.path));
                    q.append_pair("scope", &scope);
                }
                let url = u.to_string();
                let mut req = Request::builder().method(Method::GET).uri(&url);
                if let Some(c) = self.cred {
                    req = req.header(header::AUTHORIZATION, basic(c)?);
                }
                let req = req
                    .body(Empty::new())
                    .map_err(|e| Error::Format(format!("bad token URL {url}: {e}")))?;
                let resp = send(self.puller.client_for(&url), req, &url).await?;
                let status = resp.status();
                if !status.is_success() {
                    let detail = error_detail(resp).await;
                    return Err(unauthorized(format!(
                        "failed to fetch {} token: unexpected status from GET request to {url}: {status}{detail}",
                        if self.cred.is_some() {
                            "oauth"
                        } else {
                            "anonymous"
                        }
                    )));
                }
                let body =
                    read_limited(resp.into_body(), 1 << 20)
                        .await
                        .map_err(|e| Error::Network {
                            method: "GET".into(),
                            url: url.clone(),
                            detail: e,
                        })?;
                #[derive(serde::Deserialize)]
                struct Token {
                    #[serde(default)]
                    token: String,
                    #[serde(default)]
                    access_token: String,
                }
                let t: Token = serde_json::from_slice(&body).map_err(|e| {
                    unauthorized(format!("token response from {url} is not JSON: {e}"))
                })?;
                let tok = if t.token.is_empty() {
                    t.access_token
                } else {
                    t.token
                };
                if tok.is_empty() {
                    return Err(unauthorized(format!(
                        "token response from {url} has no token"
                    )));
                }
                *self.auth.lock() = Some(HeaderValue::from_str(&format!("Bearer {tok}")).map_err(
                    |_| unauthorized("token has characters not allowed in a header".into()),
                )?);
                Ok(())
            }
            _ => Err(unauthorized(format!(
                "401 Unauthorized (challenge {challenge:?})"
            ))),
        }
    }

    /// Fetches a manifest or index by tag or digest, verifies and stores it.
    async fn fetch_document(
        &self,
        wanted: &str,
        expected: Option<Digest>,
    ) -> Result<(Digest, Document)> {
        let url = format!("{}/manifests/{wanted}", self.base);
        let resp = self.get_ok(&url, Some(manifest::ACCEPT_MANIFESTS)).await?;
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let announced = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| Digest::parse(s).ok());
        let body = read_limited(resp.into_body(), manifest::MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| Error::Network {
                method: "GET".into(),
                url: url.clone(),
                detail: e,
            })?;
        self.add_downloaded(body.len() as u64);
        let want = expected.or(announced);
        let alg = want
            .as_ref()
            .map_or(crate::digest::Algorithm::Sha256, |d| d.algorithm());
        let mut h = Hasher::new(alg);
        h.update(&body);
        let actual = h.finish();
        if let Some(w) = &want
            && w != &actual
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest-{w}"),
                expected: w.clone(),
                actual,
            });
        }
        let doc = Document::parse(&body, &ct)?;
        let store = self.store.clone();
        let what = format!("manifest-{actual}");
        let d = actual.clone();
        blocking(move || store.put_blob(&what, &body, Some(&d))).await?;
        Ok((actual, doc))
    }

    /// Streams a blob into the store unless present; returns bytes transferred.
    async fn fetch_blob(
        &self,
        d: &Descriptor,
        kind: &str,
        tee: Option<std::sync::mpsc::SyncSender<Bytes>>,
    ) -> Result<u64> {
        let what = format!("{kind}-{}", d.digest);
        let store = self.store.clone();
        let (digest, size) = (d.digest.clone(), d.size);
        let writer = blocking(move || {
            if store.claim_blob(&digest)? {
                return Ok(None);
            }
            Ok(Some(store.blob_writer(what)?.expect(&digest, size)))
        })
        .await?;
        let Some(writer) = writer else {
            return Ok(0);
        };
        let url = format!("{}/blobs/{}", self.base, d.digest);
        let resp = self.get_ok(&url, None).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
        let write_task = tokio::task::spawn_blocking(move || {
            let mut writer = writer;
            let mut tee = tee;
            while let Some(chunk) = rx.blocking_recv() {
                writer.write(&chunk)?;
                // An unpacker that stopped (bad tar) drops its end; its error is its own.
                if tee.as_ref().is_some_and(|t| t.send(chunk).is_err()) {
                    tee = None;
                }
            }
            drop(tee);
            writer.commit()
        });
        let mut body = resp.into_body();
        let mut n = 0u64;
        let mut net_err = None;
        while let Some(frame) = next_frame(&mut body).await {
            match frame {
                Ok(f) => {
                    if let Ok(data) = f.into_data() {
                        n += data.len() as u64;
                        if tx.send(data).await.is_err() {
                            break; // the writer failed (too long); its error is reported below
                        }
                    }
                }
                Err(e) => {
                    net_err = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let written = write_task
            .await
            .map_err(|e| Error::Format(format!("blob writer task: {e}")))?;
        if let Some(detail) = net_err {
            return Err(Error::Network {
                method: "GET".into(),
                url,
                detail,
            });
        }
        written?;
        Ok(n)
    }
}

pub(crate) fn ensure_unpacked(store: &Store, l: &Descriptor, diff: &Digest) -> Result<()> {
    if store.claim_layer(diff)? {
        return Ok(());
    }
    store.claim_blob(&l.digest)?;
    let tmp = store.temp_dir()?;
    let res = unpack::unpack_layer(&store.blob_path(&l.digest), &tmp, &l.digest.to_string());
    match res {
        Ok(actual) if &actual == diff => store.commit_layer(&tmp, diff),
        Ok(actual) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(Error::DigestMismatch {
                what: format!("layer-{} (uncompressed)", l.digest),
                expected: diff.clone(),
                actual,
            })
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Format(format!("blocking task failed: {e}")))?
}

fn basic(c: &Credential) -> Result<HeaderValue> {
    use base64::Engine;
    let enc =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    HeaderValue::from_str(&format!("Basic {enc}"))
        .map_err(|_| Error::Format("credentials have characters not allowed in a header".into()))
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{:?}", u.port_or_known_default()))
        })
        .unwrap_or_default()
}

/// The `registries.yaml` key of a URL: `host`, with `:port` when the URL names a port that
/// is not its scheme's default.
fn config_key(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?;
    Some(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// The OS's trust roots (none readable is logged, not fatal: a CA file or plain HTTP may
/// still do).
fn native_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::warn!(error = %e, "reading the system's trust roots");
    }
    roots.add_parsable_certificates(native.certs);
    roots
}

/// Adds every certificate of a PEM bundle; a bundle without one is an error.
fn add_pem_roots(roots: &mut rustls::RootCertStore, bundle: &[u8]) -> Result<()> {
    use rustls_pki_types::pem::PemObject;
    let mut n = 0;
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(bundle) {
        let cert = cert.map_err(|e| Error::Format(format!("CA bundle: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| Error::Format(format!("CA bundle: {e}")))?;
        n += 1;
    }
    if n == 0 {
        return Err(Error::Format("CA bundle holds no certificate".into()));
    }
    Ok(())
}

type Identity = (
    Vec<rustls_pki_types::CertificateDer<'static>>,
    rustls_pki_types::PrivateKeyDer<'static>,
);

/// A client certificate chain and its key from PEM.
fn client_identity(cert_pem: &[u8], key_pem: &[u8]) -> Result<Identity> {
    use rustls_pki_types::pem::PemObject;
    let chain = rustls_pki_types::CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Format(format!("client certificate: {e}")))?;
    if chain.is_empty() {
        return Err(Error::Format(
            "client certificate file holds no certificate".into(),
        ));
    }
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| Error::Format(format!("client key: {e}")))?;
    Ok((chain, key))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(
    roots: rustls::RootCertStore,
    identity: Option<Identity>,
    insecure_skip_verify: bool,
) -> Result<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Format(format!("TLS setup: {e}")))?;
    let builder = if insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
    } else {
        builder.with_root_certificates(roots)
    };
    match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| Error::Format(format!("client certificate: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn http_client(tls: rustls::ClientConfig) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(4)
        .build(https)
}

/// `insecure_skip_verify`: any server certificate is accepted; the handshake's signatures
/// are still checked against it, so the session is at least bound to the key presented.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One request, bounded by [`IDLE_TIMEOUT`] until its headers arrive.
async fn send(
    client: &HttpClient,
    req: Request<Empty<Bytes>>,
    url: &str,
) -> Result<http::Response<hyper::body::Incoming>> {
    let net = |detail: String| Error::Network {
        method: "GET".into(),
        url: url.to_string(),
        detail,
    };
    match tokio::time::timeout(IDLE_TIMEOUT, client.request(req)).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(net(error_chain(&e))),
        Err(_) => Err(net(format!(
            "no response within {}",
            gofmt::duration(IDLE_TIMEOUT)
        ))),
    }
}

/// The next piece of a body, bounded by [`IDLE_TIMEOUT`].
async fn next_frame(
    body: &mut hyper::body::Incoming,
) -> Option<std::result::Result<hyper::body::Frame<Bytes>, String>> {
    match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
        Ok(f) => f.map(|r| r.map_err(|e| error_chain(&e))),
        Err(_) => Some(Err(format!(
            "transfer stalled: nothing received for {}",
            gofmt::duration(IDLE_TIMEOUT)
        ))),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

async fn read_limited(
    mut body: hyper::body::Incoming,
    limit: u64,
) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(frame) = next_frame(&mut body).await {
        let frame = frame?;
        if let Ok(d) = frame.into_data() {
            if out.len() as u64 + d.len() as u64 > limit {
                return Err(format!("response larger than {limit} bytes"));
            }
            out.extend_from_slice(&d);
        }
    }
    Ok(out)
}

/// The registry's error body (`{"errors":[{"code","message"}]}`) as ": CODE: message".
async fn error_detail(resp: http::Response<hyper::body::Incoming>) -> String {
    let Ok(body) = read_limited(resp.into_body(), 64 << 10).await else {
        return String::new();
    };
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<E>,
    }
    match serde_json::from_slice::<Body>(&body) {
        Ok(b) if !b.errors.is_empty() => {
            let parts: Vec<String> = b
                .errors
                .iter()
                .map(|e| format!("{}: {}", e.code.to_lowercase().replace('_', " "), e.message))
                .collect();
            format!(": {}", parts.join("; "))
        }
        _ => String::new(),
    }
}

/// Splits `Scheme k="v", k2=v2` (RFC 7235 auth-params, quoted strings with `\` escapes).
pub fn parse_challenge(h: &str) -> (String, HashMap<String, String>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = HashMap::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = rest[ks..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = rest[vs..i].trim().to_string();
        }
        if !key.is_empty() {
            params.insert(key, val);
        }
    }
    (scheme.to_string(), params)
}

/// The unpacker's end of a layer being transferred: chunks as the network delivers them.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.cur = b,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/nginx:pull");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(s, "Basic");
        assert_eq!(p["realm"], "Registry Realm");
    }

    #[test]
    fn loopback_registries() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:5000",
        ] {
            assert!(is_loopback_registry(h), "{h}");
        }
        for h in [
            "docker.io",
            "10.0.0.1:5000",
            "localhost.example:5000",
            "[fe80::1]:5000",
        ] {
            assert!(!is_loopback_registry(h), "{h}");
        }
    }
}
