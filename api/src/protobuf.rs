//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) turned into the
//! JSON the same object would have, so the API server can run them through the one JSON
//! pipeline ([`crate::object::decode`]). kubectl 1.32's typed-clientset writes send these:
//! `kubectl create configmap|secret|namespace|deployment|service …` (seen on the wire; `kubectl
//! run` and `kubectl expose` send JSON).
//!
//! Start at [`decode_body`]. The body is the magic `k8s\0` and a `runtime.Unknown` envelope
//! whose `raw` is the object message. The decoder is generic: it walks the generated table in
//! `protobuf/schema.rs` (field number → JSON key and `Kind`), written by
//! `tools/protobuf_schema.py` from the k8s-pb and k8s-openapi sources and
//! `tools/protobuf_pointer_fields.txt`; rerun that script to add a kind. Wire reading lives in
//! `protobuf/wire.rs`; real kubectl bodies are the fixtures in `protobuf/fixtures/`.
//!
//! JSON rules, as Go's encoders would produce them:
//! * Go's protobuf marshaller writes every non-pointer field, so a present zero scalar is dropped
//!   (`omitempty`) unless the field is required or a Go pointer (`Presence::Always`);
//!   repeated and map fields appear only when non-empty; messages always appear (`{}`).
//! * `Time` → RFC 3339 seconds (`null` when empty, as Go's zero time), `MicroTime` → 6 fraction
//!   digits, `Duration` → Go's `1h2m3s`, `IntOrString` → number or string, `Quantity` → its
//!   canonical string, `FieldsV1`/`RawExtension` → the embedded JSON, bytes → base64.
//! * Structs embedded with `json:",inline"` (`Presence::Inline`) spill their fields into the
//!   parent object.
//! * Unknown fields are skipped; malformed input is an error, never a panic.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::quantity::Quantity;

// Generated; formatted by the generator, not rustfmt (its `--check` compares bytes).
#[rustfmt::skip]
mod schema;
#[cfg(test)]
mod tests;
mod wire;

use wire::{Raw, Reader, WireError};

/// The 4-byte prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Nested messages deeper than this are rejected (real objects nest about 12 deep).
const MAX_DEPTH: usize = 64;

/// Why a protobuf body could not be turned into JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with the `k8s\0` magic.
    #[error("protobuf body does not start with the Kubernetes magic prefix \"k8s\\x00\"")]
    MissingMagic,
    /// The bytes are not a well-formed message of the expected type (at `path`).
    #[error("malformed protobuf at {path}: {reason}")]
    Malformed {
        /// JSON-style path of the field being read (`<envelope>` for the wrapper).
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The envelope carries a `contentEncoding` (upstream never sets one).
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedEncoding(String),
    /// The envelope names a kind this server has no protobuf schema for.
    #[error("no protobuf schema for kind {kind:?} in version {api_version:?}")]
    UnknownKind {
        /// `typeMeta.apiVersion` of the envelope.
        api_version: String,
        /// `typeMeta.kind` of the envelope.
        kind: String,
    },
    /// A value that is well-formed protobuf but has no JSON form upstream would produce.
    #[error("invalid value at {path}: {reason}")]
    InvalidValue {
        /// JSON-style path of the field.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// Messages nested deeper than the decoder allows.
    #[error("protobuf message nested more than {MAX_DEPTH} levels deep at {path}")]
    TooDeep {
        /// JSON-style path where the limit was hit.
        path: String,
    },
}

/// Decodes a `application/vnd.kubernetes.protobuf` body: the 4-byte magic `k8s\0`, then a
/// `runtime.Unknown` message (typeMeta{apiVersion, kind}, raw, contentEncoding, contentType);
/// `raw` is the object message of that kind. Returns the object as JSON with `kind` and
/// `apiVersion` set (first, as Go writes them), exactly as the JSON encoding of the same
/// object would be.
pub fn decode_body(bytes: &[u8]) -> Result<Value, ProtobufError> {
    let body = bytes
        .strip_prefix(MAGIC)
        .ok_or(ProtobufError::MissingMagic)?;
    let envelope = Envelope::read(body)?;
    if !envelope.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(
            envelope.content_encoding,
        ));
    }
    let index = root_index(&envelope.api_version, &envelope.kind).ok_or_else(|| {
        ProtobufError::UnknownKind {
            api_version: envelope.api_version.clone(),
            kind: envelope.kind.clone(),
        }
    })?;
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(envelope.kind));
    out.insert("apiVersion".into(), Value::String(envelope.api_version));
    let mut path = Path::default();
    decode_message(&mut out, index, envelope.raw, &mut path)?;
    Ok(Value::Object(out))
}

/// Whether `(apiVersion, kind)` has a protobuf schema here.
pub fn supports(api_version: &str, kind: &str) -> bool {
    root_index(api_version, kind).is_some()
}

fn root_index(api_version: &str, kind: &str) -> Option<usize> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    schema::ROOTS
        .iter()
        .find(|(g, v, k, _)| {
            // DeleteOptions is registered in every group version, as upstream does.
            *k == kind && (kind == "DeleteOptions" || (*g == group && *v == version))
        })
        .map(|(_, _, _, index)| *index)
}

/// One message type of the schema table.
#[derive(Debug)]
pub(crate) struct Message {
    /// Its protobuf name, dotted as in k8s-pb (`api.core.v1.Pod`), for error messages.
    name: &'static str,
    fields: &'static [Field],
}

/// One field of a [`Message`].
#[derive(Debug)]
pub(crate) struct Field {
    tag: u32,
    /// The JSON key (empty for [`Presence::Inline`]).
    json: &'static str,
    kind: Kind,
    repeated: bool,
    presence: Presence,
}

/// How a field's value reads and what JSON it becomes.
#[derive(Debug)]
pub(crate) enum Kind {
    /// UTF-8 string (invalid bytes become U+FFFD, as Go's JSON encoder does).
    String,
    /// Varint boolean.
    Bool,
    /// Varint, truncated to 32 bits like Go's generated code.
    Int32,
    /// Varint.
    Int64,
    /// IEEE 754 fixed 64-bit. Not reachable from today's kinds; see Duration.
    #[allow(dead_code)]
    Double,
    /// Bytes, base64 (standard, padded) in JSON.
    Bytes,
    /// A message of the table, by index.
    Message(usize),
    /// `map<string, V>`: repeated entries {1: key, 2: value}.
    Map(&'static Kind),
    /// meta/v1 Time {seconds, nanos}: RFC 3339 in seconds (upstream drops the nanos).
    Time,
    /// meta/v1 MicroTime: RFC 3339 with 6 fraction digits.
    MicroTime,
    /// meta/v1 Duration {duration: nanoseconds}: Go's `time.Duration.String()`. Not reachable
    /// from today's kinds; kept so adding a kind that embeds it needs no decoder change.
    #[allow(dead_code)]
    Duration,
    /// meta/v1 FieldsV1 {raw}: raw JSON embedded as is.
    FieldsV1,
    /// util/intstr IntOrString {type, intVal, strVal}.
    IntOrString,
    /// api/resource Quantity {string}: its canonical form.
    Quantity,
    /// A message wrapping `repeated string items = 1` whose Go type is a plain `[]string`
    /// (certificates/v1 `ExtraValue`): a JSON array of strings.
    StringList,
    /// runtime RawExtension {raw}: raw JSON embedded as is (a ControllerRevision's `data`).
    RawExtension,
}

/// When a field appears in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// Whenever it is on the wire, zero or not (required fields, Go pointers, messages).
    Always,
    /// Only when non-zero (Go non-pointer `omitempty` fields, always written by Go's marshaller).
    OmitZero,
    /// An embedded struct whose fields belong to the parent JSON object.
    Inline,
}

/// The JSON path of the field being decoded, for error messages.
#[derive(Default)]
struct Path {
    parts: Vec<String>,
}

impl Path {
    fn render(&self) -> String {
        if self.parts.is_empty() {
            "<object>".to_string()
        } else {
            self.parts.join(".")
        }
    }

    fn malformed(&self, err: WireError) -> ProtobufError {
        ProtobufError::Malformed {
            path: self.render(),
            reason: err.describe(),
        }
    }

    fn invalid(&self, reason: impl Into<String>) -> ProtobufError {
        ProtobufError::InvalidValue {
            path: self.render(),
            reason: reason.into(),
        }
    }
}

/// The `runtime.Unknown` wrapper.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

impl<'a> Envelope<'a> {
    fn read(body: &'a [u8]) -> Result<Self, ProtobufError> {
        let malformed = |err: WireError| ProtobufError::Malformed {
            path: "<envelope>".into(),
            reason: err.describe(),
        };
        let mut env = Envelope {
            api_version: String::new(),
            kind: String::new(),
            raw: &[],
            content_encoding: String::new(),
        };
        let mut reader = Reader::new(body);
        while !reader.at_end() {
            match reader.field().map_err(malformed)? {
                (1, Raw::Len(type_meta)) => {
                    let mut inner = Reader::new(type_meta);
                    while !inner.at_end() {
                        match inner.field().map_err(malformed)? {
                            (1, Raw::Len(s)) => env.api_version = lossy(s),
                            (2, Raw::Len(s)) => env.kind = lossy(s),
                            _ => {}
                        }
                    }
                }
                (2, Raw::Len(raw)) => env.raw = raw,
                (3, Raw::Len(s)) => env.content_encoding = lossy(s),
                _ => {} // contentType and anything newer
            }
        }
        Ok(env)
    }
}

/// A Go string as Go's JSON encoder writes it: each byte of an invalid UTF-8 sequence becomes
/// one U+FFFD (Rust's `from_utf8_lossy` would merge a truncated sequence into one).
fn lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(std::iter::repeat_n('\u{FFFD}', chunk.invalid().len()));
    }
    out
}

/// Decodes the fields of message `index` from `bytes` into `out` (merging, as protobuf does
/// when a message field repeats).
fn decode_message(
    out: &mut Map<String, Value>,
    index: usize,
    bytes: &[u8],
    path: &mut Path,
) -> Result<(), ProtobufError> {
    if path.parts.len() >= MAX_DEPTH {
        return Err(ProtobufError::TooDeep {
            path: path.render(),
        });
    }
    let message = schema::MESSAGES
        .get(index)
        .ok_or_else(|| path.invalid(format!("schema has no message #{index}")))?;
    let mut reader = Reader::new(bytes);
    while !reader.at_end() {
        let (tag, raw) = reader.field().map_err(|e| path.malformed(e))?;
        let Some(field) = message.fields.iter().find(|f| f.tag == tag) else {
            continue; // unknown fields are skipped, as upstream's decoder does
        };
        path.parts.push(field.json.to_string());
        let result = decode_field(out, message, field, raw, path);
        path.parts.pop();
        result?;
    }
    Ok(())
}

fn decode_field(
    out: &mut Map<String, Value>,
    message: &Message,
    field: &Field,
    raw: Raw<'_>,
    path: &mut Path,
) -> Result<(), ProtobufError> {
    match (&field.kind, field.presence) {
        (Kind::Message(index), Presence::Inline) => {
            let bytes = expect_len(raw, message, field, path)?;
            // The inlined struct shares the parent's path and object.
            path.parts.pop();
            let result = decode_message(out, *index, bytes, path);
            path.parts.push(String::new());
            result
        }
        (Kind::Message(index), _) if !field.repeated => {
            let bytes = expect_len(raw, message, field, path)?;
            let slot = out
                .entry(field.json)
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            match slot {
                Value::Object(map) => decode_message(map, *index, bytes, path),
                _ => Ok(()),
            }
        }
        (Kind::Map(value_kind), _) => {
            let bytes = expect_len(raw, message, field, path)?;
            let (key, value) = decode_map_entry(value_kind, bytes, path)?;
            let slot = out
                .entry(field.json)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(map) = slot {
                map.insert(key, value);
            }
            Ok(())
        }
        _ if field.repeated => {
            let mut values = Vec::new();
            match raw {
                // Packed repeated scalars: a run of values in one length-delimited field.
                Raw::Len(bytes) if is_packable(&field.kind) => {
                    let mut reader = Reader::new(bytes);
                    while !reader.at_end() {
                        let item = match field.kind {
                            Kind::Double => reader.fixed64().map(Raw::Fixed64),
                            _ => reader.varint().map(Raw::Varint),
                        }
                        .map_err(|e| path.malformed(e))?;
                        values.push(decode_value(&field.kind, item, message, field, path)?);
                    }
                }
                _ => values.push(decode_value(&field.kind, raw, message, field, path)?),
            }
            let slot = out
                .entry(field.json)
                .or_insert_with(|| Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            if let Value::Array(items) = slot {
                items.extend(values);
            }
            Ok(())
        }
        _ => {
            let value = decode_value(&field.kind, raw, message, field, path)?;
            if field.presence == Presence::OmitZero && is_zero(&value) {
                out.remove(field.json); // the last occurrence wins, as in protobuf
            } else {
                out.insert(field.json.to_string(), value);
            }
            Ok(())
        }
    }
}

fn is_packable(kind: &Kind) -> bool {
    matches!(kind, Kind::Bool | Kind::Int32 | Kind::Int64 | Kind::Double)
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn expect_len<'a>(
    raw: Raw<'a>,
    message: &Message,
    field: &Field,
    path: &Path,
) -> Result<&'a [u8], ProtobufError> {
    match raw {
        Raw::Len(bytes) => Ok(bytes),
        other => Err(wrong_wire_type(other, message, field, path)),
    }
}

fn wrong_wire_type(raw: Raw<'_>, message: &Message, field: &Field, path: &Path) -> ProtobufError {
    ProtobufError::Malformed {
        path: path.render(),
        reason: format!(
            "wire type {} does not fit field {} of {}",
            raw.wire_type(),
            field.tag,
            message.name
        ),
    }
}

/// A single (non-repeated, or one element of a repeated) value.
fn decode_value(
    kind: &Kind,
    raw: Raw<'_>,
    message: &Message,
    field: &Field,
    path: &mut Path,
) -> Result<Value, ProtobufError> {
    let wrong = |raw| wrong_wire_type(raw, message, field, path);
    Ok(match (kind, raw) {
        (Kind::Bool, Raw::Varint(v)) => Value::Bool(v != 0),
        (Kind::Int32, Raw::Varint(v)) => Value::from(v as i32),
        (Kind::Int64, Raw::Varint(v)) => Value::from(v as i64),
        (Kind::Double, Raw::Fixed64(bits)) => Number::from_f64(f64::from_bits(bits))
            .map(Value::Number)
            .ok_or_else(|| path.invalid("NaN or infinite number has no JSON form"))?,
        (Kind::Bool | Kind::Int32 | Kind::Int64 | Kind::Double, raw) => return Err(wrong(raw)),
        (_, Raw::Len(bytes)) => decode_len_value(kind, bytes, path)?,
        (_, raw) => return Err(wrong(raw)),
    })
}

/// Values carried in a length-delimited field: strings, bytes, messages and special types.
fn decode_len_value(kind: &Kind, bytes: &[u8], path: &mut Path) -> Result<Value, ProtobufError> {
    Ok(match kind {
        Kind::String => Value::String(lossy(bytes)),
        Kind::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        Kind::Message(index) => {
            let mut map = Map::new();
            decode_message(&mut map, *index, bytes, path)?;
            Value::Object(map)
        }
        Kind::Map(_) => return Err(path.invalid("map nested directly in a map")),
        Kind::Time | Kind::MicroTime => decode_time(bytes, matches!(kind, Kind::MicroTime), path)?,
        Kind::Duration => {
            let nanos = small_fields(bytes, path)?.int(1);
            Value::String(gofmt::duration_nanos(nanos))
        }
        Kind::FieldsV1 | Kind::RawExtension => match small_fields(bytes, path)?.bytes(1) {
            // Go keeps a nil `Raw` for an empty one, and marshals nil as `null`.
            None | Some([]) => Value::Null,
            Some(raw) => serde_json::from_slice(raw)
                .map_err(|e| path.invalid(format!("embedded JSON is invalid: {e}")))?,
        },
        Kind::IntOrString => {
            let f = small_fields(bytes, path)?;
            match f.int(1) {
                0 => Value::from(f.int(2) as i32),
                1 => Value::String(f.bytes(3).map(lossy).unwrap_or_default()),
                other => return Err(path.invalid(format!("impossible IntOrString.Type {other}"))),
            }
        }
        // Upstream parses the string while unmarshalling (so `""` is an error) and writes the
        // canonical form; an absent string is the zero quantity.
        Kind::Quantity => match small_fields(bytes, path)?.bytes(1) {
            None => Value::String("0".into()),
            Some(text) => {
                let q = Quantity::parse(&lossy(text)).map_err(|e| path.invalid(e.to_string()))?;
                Value::String(q.canonical())
            }
        },
        Kind::StringList => {
            let mut items = Vec::new();
            for (tag, raw) in small_fields(bytes, path)?.fields {
                match (tag, raw) {
                    (1, Raw::Len(b)) => items.push(Value::String(lossy(b))),
                    (1, _) => return Err(path.invalid("string list item is not a string")),
                    _ => {}
                }
            }
            Value::Array(items)
        }
        Kind::Bool | Kind::Int32 | Kind::Int64 | Kind::Double => {
            return Err(path.invalid("length-delimited data for a number"));
        }
    })
}

/// One entry of a `map<string, V>` field.
fn decode_map_entry(
    value_kind: &Kind,
    bytes: &[u8],
    path: &mut Path,
) -> Result<(String, Value), ProtobufError> {
    let mut key = String::new();
    let mut value = None;
    let mut reader = Reader::new(bytes);
    while !reader.at_end() {
        match reader.field().map_err(|e| path.malformed(e))? {
            (1, Raw::Len(k)) => key = lossy(k),
            (2, Raw::Len(v)) => value = Some(decode_len_value(value_kind, v, path)?),
            (1 | 2, _) => {
                return Err(path.invalid("map entry with a non length-delimited key or value"));
            }
            _ => {}
        }
    }
    // A missing value is the Go zero value of the value type.
    let value = match value {
        Some(v) => v,
        None => decode_len_value(value_kind, &[], path)?,
    };
    Ok((key, value))
}

/// The fields of a small special message (Time, IntOrString, …), by number.
struct SmallFields<'a> {
    fields: Vec<(u32, Raw<'a>)>,
}

impl<'a> SmallFields<'a> {
    /// The last varint with this number (0 when absent), as a Go int64.
    fn int(&self, tag: u32) -> i64 {
        self.fields
            .iter()
            .rev()
            .find_map(|(t, raw)| match raw {
                Raw::Varint(v) if *t == tag => Some(*v as i64),
                _ => None,
            })
            .unwrap_or(0)
    }

    /// The last length-delimited value with this number.
    fn bytes(&self, tag: u32) -> Option<&'a [u8]> {
        self.fields.iter().rev().find_map(|(t, raw)| match raw {
            Raw::Len(b) if *t == tag => Some(*b),
            _ => None,
        })
    }
}

fn small_fields<'a>(bytes: &'a [u8], path: &Path) -> Result<SmallFields<'a>, ProtobufError> {
    let mut fields = Vec::new();
    let mut reader = Reader::new(bytes);
    while !reader.at_end() {
        fields.push(reader.field().map_err(|e| path.malformed(e))?);
    }
    Ok(SmallFields { fields })
}

/// Unix seconds of Go's zero `time.Time` (January 1, year 1, UTC), which JSON writes as `null`.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// meta/v1 Time and MicroTime. Empty bytes are Go's zero time, which encodes as `null`.
fn decode_time(bytes: &[u8], micro: bool, path: &Path) -> Result<Value, ProtobufError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let f = small_fields(bytes, path)?;
    // Time's unmarshaller drops the nanoseconds (upstream's JSON only ever had seconds);
    // MicroTime's keeps them, and time.Unix normalizes them into [0, 1e9).
    let (seconds, nanos) = if micro {
        let nanos = i64::from(f.int(2) as i32);
        let seconds = f
            .int(1)
            .checked_add(nanos.div_euclid(1_000_000_000))
            .ok_or_else(|| path.invalid("time out of range"))?;
        (seconds, nanos.rem_euclid(1_000_000_000))
    } else {
        (f.int(1), 0)
    };
    if seconds == GO_ZERO_TIME && nanos == 0 {
        return Ok(Value::Null);
    }
    let text = rfc3339_seconds(seconds)
        .ok_or_else(|| path.invalid("time outside the years 0-9999 has no JSON form"))?;
    Ok(Value::String(if micro {
        format!("{text}.{:06}Z", nanos / 1000)
    } else {
        format!("{text}Z")
    }))
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC for Unix seconds, or `None` outside the years 0..=9999 (where
/// Go's `Time.MarshalJSON` fails too).
fn rfc3339_seconds(unix: i64) -> Option<String> {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    ))
}
