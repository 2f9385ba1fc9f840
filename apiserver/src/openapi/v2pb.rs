//! The Swagger 2.0 document in the protobuf form kubectl asks for
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`): gnostic's `openapi.v2`
//! messages (`Document`, `PathItem`, `Operation`, `Schema`…), written from the same JSON
//! document that `/openapi/v2` serves as JSON. Field numbers are those of gnostic's
//! `OpenAPIv2.proto`; vendor extensions are `NamedAny`s whose `Any.yaml` holds the value as
//! JSON (which is YAML), as kube-openapi writes them.
//!
//! Start at [`encode`]. Only what the served document uses is written: schemas, paths with
//! their operations, query/path/body parameters and responses.

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn msg(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// `Any { yaml }`.
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &v.to_string());
    m
}

/// `NamedAny` for each `x-` key of `m`, as field `field`.
fn vendor_extensions(out: &mut Msg, field: u32, m: &Map<String, Value>) {
    for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Msg::default();
        named.string(1, k);
        named.msg(2, any(v));
        out.msg(field, named);
    }
}

fn schema(v: &Value) -> Msg {
    let mut out = Msg::default();
    let Some(m) = v.as_object() else {
        return out;
    };
    out.string(1, str_of(m, "$ref"));
    out.string(2, str_of(m, "format"));
    out.string(3, str_of(m, "title"));
    out.string(4, str_of(m, "description"));
    if let Some(d) = m.get("default") {
        out.msg(5, any(d));
    }
    for (k, f) in [("maximum", 7), ("minimum", 9)] {
        if let Some(x) = m.get(k).and_then(Value::as_f64) {
            out.double(f, x);
        }
    }
    for (k, f) in [
        ("maxLength", 11),
        ("minLength", 12),
        ("maxItems", 14),
        ("minItems", 15),
        ("maxProperties", 17),
        ("minProperties", 18),
    ] {
        if let Some(x) = m.get(k).and_then(Value::as_i64) {
            out.int64(f, x);
        }
    }
    out.string(13, str_of(m, "pattern"));
    out.boolean(16, m.get("uniqueItems") == Some(&Value::Bool(true)));
    for r in m
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.string(19, r.as_str().unwrap_or_default());
    }
    for e in m
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.msg(20, any(e));
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Msg::default();
            item.key(2, 0);
            item.varint(u64::from(*b));
            out.msg(21, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.msg(1, schema(s));
            out.msg(21, item);
        }
        _ => {}
    }
    match m.get("type") {
        Some(Value::String(t)) => {
            let mut ty = Msg::default();
            ty.string(1, t);
            out.msg(22, ty);
        }
        Some(Value::Array(ts)) => {
            let mut ty = Msg::default();
            ts.iter()
                .filter_map(Value::as_str)
                .for_each(|t| ty.string(1, t));
            out.msg(22, ty);
        }
        _ => {}
    }
    if let Some(items) = m.get("items") {
        let mut it = Msg::default();
        match items {
            Value::Array(a) => a.iter().for_each(|s| it.msg(1, schema(s))),
            s => it.msg(1, schema(s)),
        }
        out.msg(23, it);
    }
    for s in m
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.msg(24, schema(s));
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        let mut p = Msg::default();
        for (name, s) in props {
            let mut named = Msg::default();
            named.string(1, name);
            named.msg(2, schema(s));
            p.msg(1, named);
        }
        out.msg(25, p);
    }
    out.boolean(27, m.get("readOnly") == Some(&Value::Bool(true)));
    vendor_extensions(&mut out, 31, m);
    out
}

/// A `ParametersItem` for one parameter object.
fn parameter(p: &Map<String, Value>) -> Msg {
    let mut param = Msg::default();
    let loc = str_of(p, "in");
    if loc == "body" {
        let mut body = Msg::default();
        body.string(1, str_of(p, "description"));
        body.string(2, str_of(p, "name"));
        body.string(3, loc);
        body.boolean(4, p.get("required") == Some(&Value::Bool(true)));
        if let Some(s) = p.get("schema") {
            body.msg(5, schema(s));
        }
        param.msg(1, body);
    } else {
        // Query and path sub-schemas share their first fields; they differ after `name`.
        let (which, query) = match loc {
            "path" => (4, false),
            "header" => (1, false),
            _ => (3, true),
        };
        let mut sub = Msg::default();
        sub.boolean(1, p.get("required") == Some(&Value::Bool(true)));
        sub.string(2, loc);
        sub.string(3, str_of(p, "description"));
        sub.string(4, str_of(p, "name"));
        let (ty, unique, ext) = if query { (6, 20, 23) } else { (5, 19, 22) };
        sub.string(ty, str_of(p, "type"));
        sub.boolean(unique, p.get("uniqueItems") == Some(&Value::Bool(true)));
        vendor_extensions(&mut sub, ext, p);
        let mut non_body = Msg::default();
        non_body.msg(which, sub);
        param.msg(2, non_body);
    }
    let mut item = Msg::default();
    item.msg(1, param);
    item
}

fn operation(op: &Map<String, Value>) -> Msg {
    let mut out = Msg::default();
    for t in op
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.string(1, t.as_str().unwrap_or_default());
    }
    out.string(3, str_of(op, "description"));
    out.string(5, str_of(op, "operationId"));
    for p in op
        .get("produces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.string(6, p.as_str().unwrap_or_default());
    }
    for c in op
        .get("consumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.string(7, c.as_str().unwrap_or_default());
    }
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(p) = p.as_object() {
            out.msg(8, parameter(p));
        }
    }
    if let Some(Value::Object(responses)) = op.get("responses") {
        let mut rs = Msg::default();
        for (code, r) in responses {
            let Some(r) = r.as_object() else { continue };
            let mut resp = Msg::default();
            resp.string(1, str_of(r, "description"));
            if let Some(s) = r.get("schema") {
                let mut item = Msg::default();
                item.msg(1, schema(s));
                resp.msg(2, item);
            }
            let mut value = Msg::default();
            value.msg(1, resp);
            let mut named = Msg::default();
            named.string(1, code);
            named.msg(2, value);
            rs.msg(1, named);
        }
        out.msg(9, rs);
    }
    vendor_extensions(&mut out, 13, op);
    out
}

/// The protobuf encoding of a Swagger 2.0 document given as JSON.
pub(crate) fn encode(doc: &Value) -> Vec<u8> {
    let mut out = Msg::default();
    let Some(d) = doc.as_object() else {
        return out.0;
    };
    out.string(1, str_of(d, "swagger"));
    if let Some(Value::Object(info)) = d.get("info") {
        let mut i = Msg::default();
        i.string(1, str_of(info, "title"));
        i.string(2, str_of(info, "version"));
        out.msg(2, i);
    }
    if let Some(Value::Object(paths)) = d.get("paths") {
        let mut ps = Msg::default();
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            let mut pi = Msg::default();
            for (verb, f) in [
                ("get", 2),
                ("put", 3),
                ("post", 4),
                ("delete", 5),
                ("options", 6),
                ("head", 7),
                ("patch", 8),
            ] {
                if let Some(Value::Object(op)) = item.get(verb) {
                    pi.msg(f, operation(op));
                }
            }
            for p in item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(p) = p.as_object() {
                    pi.msg(9, parameter(p));
                }
            }
            let mut named = Msg::default();
            named.string(1, path);
            named.msg(2, pi);
            ps.msg(2, named);
        }
        out.msg(8, ps);
    }
    if let Some(Value::Object(defs)) = d.get("definitions") {
        let mut ds = Msg::default();
        for (name, s) in defs {
            let mut named = Msg::default();
            named.string(1, name);
            named.msg(2, schema(s));
            ds.msg(1, named);
        }
        out.msg(9, ds);
    }
    out.0
}
