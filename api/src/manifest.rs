//! Manifest reading for the CLI (`paddock up -f`, `paddock apply -f`, `paddock lint`):
//! files, folders (their `.yaml`/`.yml`/`.json` files, sorted, not recursive, like kubectl)
//! and stdin (`-`); multi-document YAML or JSON; `kind: List` expanded into its items.
//!
//! YAML goes YAML → `serde_json::Value` → typed (in [`crate::object::decode`]), which is as
//! strict about scalar types as kubectl sending JSON. Start at [`read_paths`] and
//! [`check_document`].

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::object::{FieldValidation, decode, validate_create};
use crate::registry::{self, ResourceInfo};
use crate::status::ApiError;

/// Largest manifest input accepted (per file or stdin).
pub const MAX_BYTES: usize = 32 * 1024 * 1024;
/// Most documents accepted per file.
pub const MAX_DOCUMENTS: usize = 1024;

/// One object read from a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file path, or `<stdin>`.
    pub source: String,
    /// 0-based position among the non-empty documents of the source.
    pub index: usize,
    /// 0-based position inside a `kind: List` document, if it came from one.
    pub item: Option<usize>,
    /// The object.
    pub value: Value,
}

impl Document {
    /// `app.yaml: document 2` / `app.yaml: document 2, item 1` (1-based for people),
    /// plus `(Kind "name")` when the object has them.
    pub fn describe(&self) -> String {
        let mut s = format!("{}: document {}", self.source, self.index + 1);
        if let Some(i) = self.item {
            s.push_str(&format!(", item {}", i + 1));
        }
        let kind = self.value.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = self
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .or_else(|| {
                self.value
                    .pointer("/metadata/generateName")
                    .and_then(Value::as_str)
            })
            .unwrap_or("");
        if !kind.is_empty() {
            s.push_str(&format!(" ({kind} {})", crate::status::go_quote(name)));
        }
        s
    }
}

/// Why a manifest could not be read or an object in it is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A file, folder or stdin could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path (or `<stdin>`).
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The input is larger than [`MAX_BYTES`] or has more than [`MAX_DOCUMENTS`] documents.
    #[error("{path}: {what}")]
    TooLarge {
        /// The path (or `<stdin>`).
        path: String,
        /// What limit was exceeded.
        what: String,
    },
    /// Malformed YAML or JSON (the message carries line and column).
    #[error("{path}: {message}")]
    Parse {
        /// The path (or `<stdin>`).
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A document is not an acceptable object (not a mapping, no kind, unknown kind, unknown
    /// fields, invalid values…).
    #[error("{location}: {message}")]
    Invalid {
        /// `app.yaml: document 2 (Deployment "web")`.
        location: String,
        /// What is wrong, naming the field.
        message: String,
        /// The server-style error, when there is one (for exit codes and `Status` output).
        api: Option<Box<ApiError>>,
    },
}

/// Splits `bytes` into documents: a JSON value or stream of values when it starts with `{`
/// or `[`, multi-document YAML otherwise. Empty documents are skipped; `kind: List` (and any
/// `*List` kind with `items`) is expanded.
pub fn decode_bytes(bytes: &[u8], source: &str) -> Result<Vec<Document>, ManifestError> {
    if bytes.len() > MAX_BYTES {
        return Err(ManifestError::TooLarge {
            path: source.to_string(),
            what: format!("larger than {MAX_BYTES} bytes"),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| ManifestError::Parse {
        path: source.to_string(),
        message: format!("not UTF-8 text: {e}"),
    })?;
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let values: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let mut out = Vec::new();
        for v in serde_json::Deserializer::from_str(trimmed).into_iter::<Value>() {
            let v = v.map_err(|e| ManifestError::Parse {
                path: source.to_string(),
                message: format!("invalid JSON: {e}"),
            })?;
            out.push(v);
            if out.len() > MAX_DOCUMENTS {
                break;
            }
        }
        // A top-level JSON array is a list of objects, as kubectl treats it.
        if out.len() == 1 && out[0].is_array() {
            match out.pop() {
                Some(Value::Array(items)) => items,
                other => other.into_iter().collect(),
            }
        } else {
            out
        }
    } else {
        crate::yaml::from_multiple(trimmed).map_err(|e| ManifestError::Parse {
            path: source.to_string(),
            message: format!("invalid YAML: {}", yaml_message(&e.to_string())),
        })?
    };
    if values.len() > MAX_DOCUMENTS {
        return Err(ManifestError::TooLarge {
            path: source.to_string(),
            what: format!("more than {MAX_DOCUMENTS} documents"),
        });
    }
    let mut docs = Vec::new();
    for (index, value) in values.into_iter().filter(|v| !v.is_null()).enumerate() {
        let is_list = value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && value.get("items").is_some_and(Value::is_array);
        if is_list {
            let items = value
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (item, v) in items.into_iter().enumerate() {
                docs.push(Document {
                    source: source.to_string(),
                    index,
                    item: Some(item),
                    value: v,
                });
            }
        } else {
            docs.push(Document {
                source: source.to_string(),
                index,
                item: None,
                value,
            });
        }
    }
    Ok(docs)
}

/// Reads every path: `-` is stdin, a folder contributes its `.yaml`/`.yml`/`.json` files
/// in name order (not recursive), a file is read as is.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<Document>, ManifestError> {
    let mut docs = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            let mut buf = Vec::new();
            std::io::stdin()
                .take(MAX_BYTES as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(|source| ManifestError::Io {
                    path: "<stdin>".to_string(),
                    source,
                })?;
            docs.extend(decode_bytes(&buf, "<stdin>")?);
        } else if p.is_dir() {
            for f in manifest_files(p)? {
                docs.extend(read_file(&f)?);
            }
        } else {
            docs.extend(read_file(p)?);
        }
    }
    Ok(docs)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ManifestError + '_ {
    move |source| ManifestError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The manifest files directly inside `dir`, sorted by name.
fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if path.is_file() && matches!(ext, "yaml" | "yml" | "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_file(path: &Path) -> Result<Vec<Document>, ManifestError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut buf = Vec::new();
    file.take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(io_err(path))?;
    decode_bytes(&buf, &path.display().to_string())
}

/// Checks a document as the API server would on create under `fieldValidation=Strict`:
/// a known `apiVersion`/`kind`, no unknown fields, valid values. Returns the resource (in the
/// document's version) and the decoded, defaulted object (in the stored version). A missing
/// namespace is validated as `default`.
pub fn check_document(doc: &Document) -> Result<(&'static ResourceInfo, Value), ManifestError> {
    let invalid = |message: String, api: Option<ApiError>| ManifestError::Invalid {
        location: doc.describe(),
        message,
        api: api.map(Box::new),
    };
    if !doc.value.is_object() {
        return Err(invalid(
            format!("expected an object, got {}", json_type(&doc.value)),
            None,
        ));
    }
    let api_version = doc
        .value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = doc.value.get("kind").and_then(Value::as_str).unwrap_or("");
    let mut missing = Vec::new();
    if api_version.is_empty() {
        missing.push("apiVersion not set");
    }
    if kind.is_empty() {
        missing.push("kind not set");
    }
    if !missing.is_empty() {
        return Err(invalid(
            format!("error validating data: [{}]", missing.join(", ")),
            None,
        ));
    }
    let info = registry::by_kind(api_version, kind).ok_or_else(|| {
        invalid(
            format!(
                "no matches for kind {} in version {}",
                crate::status::go_quote(kind),
                crate::status::go_quote(api_version)
            ),
            None,
        )
    })?;
    let mut decoded = decode(info, doc.value.clone(), FieldValidation::Strict)
        .map_err(|e| invalid(e.message.clone(), Some(e)))?;
    // A converted version (autoscaling/v1) is validated as the server does: in the stored one.
    let served = info;
    let info = registry::storage(info);
    decoded.value = crate::convert::to_storage(served, decoded.value)
        .map_err(|e| invalid(e.message.clone(), Some(e)))?;
    let mut probe = decoded.value.clone();
    if let Some(meta) = probe.get_mut("metadata").and_then(Value::as_object_mut) {
        if info.namespaced
            && meta
                .get("namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        {
            meta.insert("namespace".into(), Value::String("default".into()));
        }
        if !info.namespaced {
            // The server clears a namespace sent with a cluster-scoped object.
            meta.remove("namespace");
        }
        let name_missing = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty();
        if let Some(g) = meta
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|g| name_missing && !g.is_empty())
        {
            // The server appends 5 random characters; validate with a stand-in suffix.
            let name = format!("{g}abcde");
            meta.insert("name".into(), Value::String(name));
        }
    }
    if info.kind == "Service" {
        stand_in_health_check_port(&mut probe);
    }
    validate_create(info, &probe).map_err(|e| {
        let message = match &e.details {
            Some(d) if !d.causes.is_empty() => d
                .causes
                .iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect::<Vec<_>>()
                .join("; "),
            _ => e.message.clone(),
        };
        invalid(message, Some(e))
    })?;
    Ok((served, decoded.value))
}

/// A LoadBalancer with `externalTrafficPolicy: Local` gets its `healthCheckNodePort` from
/// the server's allocator before validation requires it; validate with a stand-in port.
fn stand_in_health_check_port(svc: &mut Value) {
    let at = |p: &str| svc.pointer(p).and_then(Value::as_str).map(str::to_string);
    let needs = at("/spec/type").as_deref() == Some("LoadBalancer")
        && at("/spec/externalTrafficPolicy").as_deref() == Some("Local");
    let unset = svc
        .pointer("/spec/healthCheckNodePort")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        == 0;
    if needs && unset {
        svc["spec"]["healthCheckNodePort"] =
            Value::from(crate::validation::service::NODE_PORT_RANGE.0);
    }
}

/// The first line of a serde-saphyr error (`line 3 column 5: …`), without its source
/// snippet and without advice about parser options that only make sense to its API users.
fn yaml_message(full: &str) -> String {
    let first = full.lines().next().unwrap_or(full);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.find(", set DuplicateKeyPolicy") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests;
