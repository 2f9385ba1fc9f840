//! `paddock image …`: the node's image store from the command line — `import` image archives
//! (offline and air-gapped nodes), `ls`, `rm`, `pull`. The store is `<data dir>/images` (see
//! the `image` crate's `store` module), the data dir found as every other subcommand finds it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use image::keyring::{Credential, Keyring};
use image::pull::{EndpointTls, PullOptions, Puller};
use image::{Reference, Store};

use crate::server::resolve_data_dir;

/// `paddock image` flags.
#[derive(Debug, Args)]
pub(crate) struct ImageArgs {
    /// The node's data dir [default: /var/lib/paddock as root, $XDG_DATA_HOME/paddock otherwise].
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImageCommand {
    /// Import OCI image layouts (directories or tar archives) and `docker save` archives.
    Import {
        /// Name for OCI entries that carry only a tag (`NAME` → `NAME:TAG`), as skopeo's
        /// `oci:DIR:TAG` writes them.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The archives or directories.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List the images.
    Ls {
        /// Only the image IDs.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove images (by reference or image ID) and the content no other image uses.
    Rm {
        /// References (`busybox`, `host:5000/app:1`) or image IDs (`sha256:…`).
        #[arg(required = true, value_name = "REF")]
        refs: Vec<String>,
    },
    /// Pull an image from its registry.
    Pull {
        /// `USER:PASSWORD` for the registry.
        #[arg(long, value_name = "USER:PASSWORD", conflicts_with = "docker_config")]
        creds: Option<String>,
        /// A Docker config file (`.dockerconfigjson` format) to take credentials from, matched
        /// to the image as the kubelet matches imagePullSecrets.
        #[arg(long, value_name = "FILE")]
        docker_config: Option<PathBuf>,
        /// A registry (`HOST:PORT`) that may be reached over plain HTTP (loopback ones always
        /// may); repeatable.
        #[arg(long = "insecure-registry", value_name = "HOST")]
        insecure: Vec<String>,
        /// A mirror endpoint for the image's registry (`http://127.0.0.1:5000`), tried before
        /// the registry itself; repeatable, tried in order.
        #[arg(long = "mirror", value_name = "URL")]
        mirrors: Vec<String>,
        /// The node's registry configuration (k3s's registries.yaml format: mirrors with
        /// endpoint and rewrite, configs with auth and tls.ca_file)
        /// [default: <data dir>/registries.yaml when it exists].
        #[arg(long, value_name = "FILE")]
        registry_config: Option<PathBuf>,
        /// The reference.
        #[arg(value_name = "REF")]
        reference: String,
    },
}

/// The largest registry configuration file read.
const MAX_REGISTRY_CONFIG: u64 = 1 << 20;

/// The node's registry configuration (k3s's `registries.yaml` format, see the `image` crate's
/// `registries` module): `--registry-config FILE`, else `<data dir>/registries.yaml` when it
/// exists, else none. Checked whole, the CA files read: an error names the file and the field.
/// Returns the configuration and the endpoints' TLS settings with their files' contents.
pub(crate) fn load_registries(
    flag: Option<&std::path::Path>,
    data_dir: &std::path::Path,
) -> anyhow::Result<(image::registries::Registries, EndpointsTls)> {
    use std::io::Read;
    let default = data_dir.join("registries.yaml");
    let path = match flag {
        Some(p) => p.to_path_buf(),
        None if default.exists() => default,
        None => return Ok(Default::default()),
    };
    let shown = path.display();
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_REGISTRY_CONFIG + 1).read_to_string(&mut text))
        .with_context(|| format!("reading the registry configuration {shown}"))?;
    anyhow::ensure!(
        text.len() as u64 <= MAX_REGISTRY_CONFIG,
        "registry configuration {shown}: larger than {MAX_REGISTRY_CONFIG} bytes"
    );
    let value = api::yaml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "registry configuration {shown}: {}",
            e.to_string().lines().next().unwrap_or("invalid YAML")
        )
    })?;
    // An empty file is an empty configuration.
    let value = if value.is_null() {
        serde_json::json!({})
    } else {
        value
    };
    let registries: image::registries::Registries = serde_path_to_error::deserialize(value)
        .map_err(|e| {
            anyhow::anyhow!(
                "registry configuration {shown}: field {}: {}",
                e.path(),
                e.inner()
            )
        })?;
    registries
        .check()
        .map_err(|e| anyhow::anyhow!("registry configuration {shown}: field {e}"))?;
    let read = |(field, file): &(String, std::path::PathBuf)| {
        let mut bytes = Vec::new();
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_TLS_FILE + 1).read_to_end(&mut bytes))
            .with_context(|| {
                format!(
                    "registry configuration {shown}: field {field}: reading {}",
                    file.display()
                )
            })?;
        anyhow::ensure!(
            bytes.len() as u64 <= MAX_TLS_FILE,
            "registry configuration {shown}: field {field}: {} is larger than {MAX_TLS_FILE} bytes",
            file.display()
        );
        Ok(bytes)
    };
    let mut endpoints = EndpointsTls::new();
    for (host, files) in registries.tls_files() {
        let client_identity = match (&files.cert, &files.key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            _ => None,
        };
        let tls = EndpointTls {
            ca_pem: files.ca.as_ref().map(read).transpose()?,
            client_identity,
            insecure_skip_verify: files.insecure_skip_verify,
        };
        endpoints.insert(host, tls);
    }
    Ok((registries, endpoints))
}

/// Each endpoint's TLS settings, by `host[:port]`.
pub(crate) type EndpointsTls = std::collections::BTreeMap<String, EndpointTls>;

/// The largest CA, certificate or key file read.
const MAX_TLS_FILE: u64 = 1 << 20;

/// A registry client trusting the OS's roots, with the endpoints' own TLS settings; an error
/// names the endpoint whose files do not parse.
pub(crate) fn puller_with(store: Store, endpoints: &EndpointsTls) -> anyhow::Result<Puller> {
    Puller::with_endpoint_tls(store, endpoints)
        .context("the registry client (configs.<host>.tls of the registry configuration)")
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("blocking task")?
}

pub(crate) async fn run(args: ImageArgs) -> anyhow::Result<()> {
    let data_dir = resolve_data_dir(args.data_dir)?;
    let root = data_dir.join("images");
    let store = blocking(move || {
        Store::open(&root).with_context(|| format!("opening the image store {}", root.display()))
    })
    .await?;
    match args.command {
        ImageCommand::Import { name, files } => {
            blocking(move || {
                let platform = image::manifest::Platform::host();
                for f in files {
                    let got = image::import::import_path(&store, &f, &platform, name.as_deref())
                        .with_context(|| format!("importing {}", f.display()))?;
                    for i in got {
                        println!("imported {} ({})", i.names.join(", "), i.image.config);
                    }
                }
                Ok(())
            })
            .await
        }
        ImageCommand::Ls { quiet } => {
            let list = blocking(move || Ok(store.list()?)).await?;
            print!("{}", render_list(&list, quiet));
            Ok(())
        }
        ImageCommand::Rm { refs } => {
            blocking(move || {
                for r in refs {
                    let name = store_name(&r)?;
                    let removed = store
                        .remove(&name, &BTreeSet::new())
                        .with_context(|| format!("removing {r}"))?;
                    for n in removed {
                        println!("Deleted: {n}");
                    }
                }
                Ok(())
            })
            .await
        }
        ImageCommand::Pull {
            creds,
            docker_config,
            insecure,
            mirrors,
            registry_config,
            reference,
        } => {
            let (registries, tls) = load_registries(registry_config.as_deref(), &data_dir)?;
            let mut credentials = Vec::new();
            if let Some(c) = creds {
                let Some((u, p)) = c.split_once(':') else {
                    bail!("--creds must be USER:PASSWORD");
                };
                credentials.push(Credential {
                    username: u.to_string(),
                    password: p.to_string(),
                });
            }
            if let Some(path) = docker_config {
                let data =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let mut keyring = Keyring::new();
                keyring
                    .add_docker_config_json(&data)
                    .with_context(|| format!("{}", path.display()))?;
                let r = Reference::parse_docker_ref(&reference)
                    .with_context(|| format!("couldn't parse image name {reference:?}"))?;
                credentials.extend(keyring.lookup(&r.name()));
            }
            let puller = puller_with(store, &tls)?;
            let mut opts = PullOptions {
                credentials,
                insecure_registries: insecure,
                mirrors,
                ..PullOptions::default()
            };
            // The flags' mirrors come after the file's (its are the node's own).
            if let Ok(r) = Reference::parse_docker_ref(&reference) {
                registries.apply(&r, &mut opts);
            }
            let start = tokio::time::Instant::now();
            let pulled = puller
                .pull(&reference, &opts)
                .await
                .with_context(|| format!("failed to pull image {reference:?}"))?;
            println!(
                "pulled {} ({}, {} bytes transferred in {:.1?})",
                pulled.reference,
                pulled.image.config,
                pulled.downloaded,
                start.elapsed()
            );
            Ok(())
        }
    }
}

/// The store's key for what a user typed: an image ID as is, a reference normalised.
fn store_name(r: &str) -> anyhow::Result<String> {
    if r.starts_with("sha256:") {
        return Ok(r.to_string());
    }
    Ok(Reference::parse_docker_ref(r)
        .with_context(|| format!("couldn't parse image name {r:?}"))?
        .to_string())
}

/// `crictl images`' table: one row per tag (an image named only by digest shows `<none>`).
fn render_list(list: &[(String, image::store::ImageRecord)], quiet: bool) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut tagged: BTreeSet<String> = BTreeSet::new();
    for (name, rec) in list {
        if let Ok(r) = Reference::parse(name)
            && let Some(t) = r.tag()
        {
            tagged.insert(rec.config.to_string());
            rows.push([r.name(), t.to_string(), short_id(rec), human_size(rec.size)]);
        }
    }
    for (name, rec) in list {
        if tagged.insert(rec.config.to_string())
            && let Ok(r) = Reference::parse(name)
        {
            rows.push([
                r.name(),
                "<none>".into(),
                short_id(rec),
                human_size(rec.size),
            ]);
        }
    }
    if quiet {
        let ids: BTreeSet<String> = list.iter().map(|(_, r)| r.config.to_string()).collect();
        return ids.into_iter().map(|i| format!("{i}\n")).collect();
    }
    let header = [
        "IMAGE".to_string(),
        "TAG".into(),
        "IMAGE ID".into(),
        "SIZE".into(),
    ];
    let mut widths = header.iter().map(String::len).collect::<Vec<_>>();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

fn short_id(r: &image::store::ImageRecord) -> String {
    r.config.hex().chars().take(13).collect()
}

/// Docker's `units.HumanSize`: decimal units, four significant digits (`1.23MB`).
fn human_size(n: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    // %.4g: four significant digits, trailing zeros dropped.
    let digits = if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(12_345_678), "12.35MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
    }

    #[test]
    fn names_are_normalised_for_the_store() {
        assert_eq!(
            store_name("busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(store_name("sha256:abc").unwrap(), "sha256:abc");
        assert!(store_name("Bad").is_err());
    }
}
