#!/usr/bin/env python3
"""Generates `api/src/protobuf/schema.rs`, the table that `api::protobuf` walks to turn
Kubernetes protobuf request bodies into JSON.

Inputs (crates.io sources in the cargo registry; when missing, the script runs `cargo fetch` on a
throwaway manifest that depends on exactly these versions):

* `k8s-pb` 0.9.0 (prost types of all Kubernetes protos): field numbers, wire types, which fields
  are repeated or maps, and the message type of each message field.
* `k8s-openapi` 0.29.0, `src/v1_37`: the exact JSON key of every field (its hand-written serde
  code spells them, e.g. `"podIPs" => Field::Key_pod_ips`) and which fields are required (not
  `Option`).  Fields are matched by their Rust snake_case name with underscores removed and case
  folded, because prost and k8s-openapi split acronyms differently (`pod_i_ps` vs `pod_ips`).
* `tools/protobuf_pointer_fields.txt`: the optional scalar fields that are Go *pointers* upstream
  (`*int32 replicas`).  Go's protobuf marshaller writes every non-pointer field, zero or not, while
  Go's JSON encoder omits zero `omitempty` fields; only for pointer fields does a present zero
  (`replicas: 0`) mean something.  Neither input crate records pointer-ness, so this list was
  taken from the upstream `types.go` files; see that file's header.

Only messages reachable from ROOTS (the kinds paddock serves) are emitted.

Usage: `python3 tools/protobuf_schema.py [--check]` from the workspace root.  `--check` exits 1
if the committed file differs from what would be generated.
"""

import glob
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "api", "src", "protobuf", "schema.rs")
POINTERS = os.path.join(ROOT, "tools", "protobuf_pointer_fields.txt")
CARGO_HOME = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))

# (apiVersion group, version, kind, k8s-pb module path, message name)
ROOTS = [
    ("", "v1", "Namespace", "api.core.v1", "Namespace"),
    ("", "v1", "Pod", "api.core.v1", "Pod"),
    ("", "v1", "Service", "api.core.v1", "Service"),
    ("", "v1", "Endpoints", "api.core.v1", "Endpoints"),
    ("", "v1", "Node", "api.core.v1", "Node"),
    ("", "v1", "Event", "api.core.v1", "Event"),
    ("", "v1", "ConfigMap", "api.core.v1", "ConfigMap"),
    ("", "v1", "Secret", "api.core.v1", "Secret"),
    ("", "v1", "Binding", "api.core.v1", "Binding"),
    ("apps", "v1", "Deployment", "api.apps.v1", "Deployment"),
    ("apps", "v1", "ReplicaSet", "api.apps.v1", "ReplicaSet"),
    ("", "v1", "ReplicationController", "api.core.v1", "ReplicationController"),
    ("apps", "v1", "StatefulSet", "api.apps.v1", "StatefulSet"),
    ("apps", "v1", "DaemonSet", "api.apps.v1", "DaemonSet"),
    ("apps", "v1", "ControllerRevision", "api.apps.v1", "ControllerRevision"),
    ("batch", "v1", "Job", "api.batch.v1", "Job"),
    ("batch", "v1", "CronJob", "api.batch.v1", "CronJob"),
    ("autoscaling", "v1", "Scale", "api.autoscaling.v1", "Scale"),
    ("autoscaling", "v1", "HorizontalPodAutoscaler", "api.autoscaling.v1", "HorizontalPodAutoscaler"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "api.autoscaling.v2", "HorizontalPodAutoscaler"),
    ("discovery.k8s.io", "v1", "EndpointSlice", "api.discovery.v1", "EndpointSlice"),
    ("coordination.k8s.io", "v1", "Lease", "api.coordination.v1", "Lease"),
    ("policy", "v1", "Eviction", "api.policy.v1", "Eviction"),
    ("policy", "v1", "PodDisruptionBudget", "api.policy.v1", "PodDisruptionBudget"),
    ("certificates.k8s.io", "v1", "CertificateSigningRequest", "api.certificates.v1", "CertificateSigningRequest"),
    ("networking.k8s.io", "v1", "Ingress", "api.networking.v1", "Ingress"),
    ("networking.k8s.io", "v1", "IngressClass", "api.networking.v1", "IngressClass"),
    ("", "v1", "ServiceAccount", "api.core.v1", "ServiceAccount"),
    ("authentication.k8s.io", "v1", "TokenRequest", "api.authentication.v1", "TokenRequest"),
    ("rbac.authorization.k8s.io", "v1", "Role", "api.rbac.v1", "Role"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "api.rbac.v1", "ClusterRole"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "api.rbac.v1", "RoleBinding"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "api.rbac.v1", "ClusterRoleBinding"),
    ("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "api.authorization.v1", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "v1", "SubjectAccessReview", "api.authorization.v1", "SubjectAccessReview"),
    ("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "api.authorization.v1", "SelfSubjectRulesReview"),
    ("authentication.k8s.io", "v1", "SelfSubjectReview", "api.authentication.v1", "SelfSubjectReview"),
    # DeleteOptions is registered in every group version; the decoder matches it by kind alone.
    ("meta.k8s.io", "v1", "DeleteOptions", "apimachinery.pkg.apis.meta.v1", "DeleteOptions"),
]

# Messages with their own JSON encoding (see api/src/protobuf.rs `Kind`).
SPECIAL = {
    "apimachinery.pkg.apis.meta.v1.Time": "Time",
    "apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "apimachinery.pkg.apis.meta.v1.FieldsV1": "FieldsV1",
    "apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "apimachinery.pkg.api.resource.Quantity": "Quantity",
    "apimachinery.pkg.runtime.RawExtension": "RawExtension",
    "api.certificates.v1.ExtraValue": "StringList",
}

SCALARS = {
    "string": "String",
    "bool": "Bool",
    "int32": "Int32",
    "int64": "Int64",
    "double": "Double",
    "bytes": "Bytes",
}


def norm(name):
    """Rust field name → matching key (prost and k8s-openapi split acronyms differently)."""
    return name.removeprefix("r#").replace("_", "").lower()


def fetch_inputs():
    """Puts the exact input crates into the cargo registry with `cargo fetch` on a throwaway
    manifest (k8s-pb is deliberately no dependency of the workspace)."""
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "src"))
        open(os.path.join(tmp, "src", "lib.rs"), "w").close()
        with open(os.path.join(tmp, "Cargo.toml"), "w") as fh:
            fh.write(
                '[package]\nname = "fetch-inputs"\nversion = "0.0.0"\nedition = "2021"\n'
                '[dependencies]\nk8s-pb = "=0.9.0"\nk8s-openapi = "=0.29.0"\n'
            )
        subprocess.run(["cargo", "fetch", "--quiet"], cwd=tmp, check=True)


def find_src(crate, sub):
    pattern = os.path.join(CARGO_HOME, "registry", "src", "*", crate, sub)
    hits = sorted(glob.glob(pattern))
    if not hits:
        fetch_inputs()
        hits = sorted(glob.glob(pattern))
    if not hits:
        sys.exit(f"{crate} not found in the cargo registry ({pattern})")
    return hits[-1]


def split_top(s, sep=","):
    """Splits on `sep` outside angle brackets."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p.strip() for p in out if p.strip()]


def resolve(module, rust_type):
    """`super::super::x::Y` seen from module `a.b.c` → `x.Y` style dotted name."""
    parts = rust_type.split("::")
    base = module.split(".")
    while parts and parts[0] == "super":
        parts.pop(0)
        base = base[:-1]
    return ".".join(base + parts)


def read_type(text, start):
    """The field type starting at `start`, up to the first comma outside angle brackets."""
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "," and depth == 0:
            return text[start:i]
    return text[start:]


def parse_pb(src):
    """Returns {full message name: [field dict]} from every k8s-pb mod.rs."""
    messages = {}
    for path in glob.glob(os.path.join(src, "**", "mod.rs"), recursive=True):
        module = ".".join(os.path.relpath(os.path.dirname(path), src).split(os.sep))
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", text, re.S):
            name, body = m.group(1), m.group(2)
            fields = []
            # attribute, then `pub name: Type,` (the type may wrap over lines)
            for f in re.finditer(r"#\[prost\(([^\]]*)\)\]\s*pub ([\w#]+):", body):
                ftype = " ".join(read_type(body, f.end()).split())
                fields.append(parse_field(module, name, f.group(1), f.group(2), ftype))
            messages[f"{module}.{name}"] = fields
    return messages


def parse_field(module, msg, attr, fname, ftype):
    tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
    kind = attr.split(",")[0].split("=")[0].strip()
    field = {"name": fname.removeprefix("r#"), "tag": tag, "repeated": "repeated" in attr}
    if kind == "btree_map":
        key, value = re.search(r'btree_map = "(\w+), (\w+)"', attr).groups()
        if key != "string":
            sys.exit(f"{module}.{msg}.{fname}: map key {key} unsupported")
        inner = ftype[ftype.index("<") + 1 : ftype.rindex(">")]
        vtype = split_top(inner)[1]
        field["map"] = True
        field["kind"] = ("message", resolve(module, vtype)) if value == "message" else value
    elif kind == "message":
        inner = ftype
        for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<"):
            if inner.startswith(wrapper):
                inner = inner[len(wrapper) : inner.rindex(">")].strip().rstrip(",").strip()
        field["kind"] = ("message", resolve(module, inner))
    elif kind in SCALARS:
        field["kind"] = kind
    else:
        sys.exit(f"{module}.{msg}.{fname}: prost kind {kind} unsupported")
    return field


def parse_openapi(src):
    """Returns {(module, lowercase struct name): {norm(rust field): (json, required)}}."""
    types = {}
    for path in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True):
        module = ".".join(os.path.relpath(os.path.dirname(path), src).split(os.sep))
        text = open(path, encoding="utf-8").read()
        m = re.search(r"pub struct (\w+) \{(.*?)\n\}", text, re.S)
        if not m:
            continue
        required = {}
        for f in re.finditer(r"pub ([\w#]+): (.*?),\n", m.group(2) + "\n"):
            required[norm(f.group(1))] = not f.group(2).startswith("Option<")
        keys = {}
        for f in re.finditer(r'"([^"]+)" => Field::Key_(\w+),', text):
            keys[norm(f.group(2))] = (f.group(1), required.get(norm(f.group(2)), False))
        types[(module, m.group(1).lower())] = keys
    return types


def read_pointers():
    out = set()
    for line in open(POINTERS, encoding="utf-8"):
        line = line.split("#")[0].strip()
        if line:
            out.add(line)
    return out


def main():
    check = "--check" in sys.argv[1:]
    pb = parse_pb(find_src("k8s-pb-0.9.0", "src"))
    oa = parse_openapi(find_src("k8s-openapi-0.29.0", "src/v1_37"))
    pointers = read_pointers()

    # Reachability, in a stable breadth-first order.
    order, seen = [], set()
    queue = [f"{m}.{n}" for (_, _, _, m, n) in ROOTS]
    while queue:
        full = queue.pop(0)
        if full in seen or full in SPECIAL:
            continue
        if full not in pb:
            sys.exit(f"message {full} not found in k8s-pb")
        seen.add(full)
        order.append(full)
        for f in pb[full]:
            if isinstance(f["kind"], tuple):
                queue.append(f["kind"][1])
    index = {name: i for i, name in enumerate(order)}

    def own_keys(full):
        module, name = full.rsplit(".", 1)
        return oa.get((module, name.lower()), {})

    # Go structs embedded with `json:",inline"` (Volume's VolumeSource, Probe's ProbeHandler,
    # ConfigMapKeySelector's LocalObjectReference …) are message fields that have no JSON key of
    # their own: their fields appear in the parent object.  Such a message may have no
    # k8s-openapi type at all; its keys are then found among its parents' keys.
    inline_keys = {}
    for full in order:  # breadth-first: a parent comes before what it embeds
        keys = own_keys(full) or inline_keys.get(full, {})
        for f in pb[full]:
            kind = f["kind"]
            if not isinstance(kind, tuple) or kind[1] in SPECIAL or norm(f["name"]) in keys:
                continue
            if keys and all(norm(g["name"]) in keys for g in pb[kind[1]]):
                f["inline"] = True
                inline_keys.setdefault(kind[1], {}).update(keys)

    used_pointers, unmatched = set(), []

    def kind_expr(kind):
        if isinstance(kind, tuple):
            target = kind[1]
            if target in SPECIAL:
                return f"Kind::{SPECIAL[target]}"
            return f"Kind::Message({index[target]})"
        return f"Kind::{SCALARS[kind]}"

    lines = [
        "// @generated by tools/protobuf_schema.py from k8s-pb 0.9.0, k8s-openapi 0.29.0 (v1_37)",
        "// and tools/protobuf_pointer_fields.txt. Do not edit; rerun the generator.",
        "",
        "use super::{Field, Kind, Message, Presence};",
        "",
        "/// Every message reachable from [`ROOTS`]; `Kind::Message(i)` indexes this table.",
        "pub(super) static MESSAGES: &[Message] = &[",
    ]
    for i, full in enumerate(order):
        module, name = full.rsplit(".", 1)
        keys = own_keys(full) or inline_keys.get(full, {})
        if not keys:
            print(f"note: no k8s-openapi type for {full}", file=sys.stderr)
        lines.append(f"    // {i}")
        lines.append(f'    Message {{ name: "{full}", fields: &[')
        for f in pb[full]:
            json, required = keys.get(norm(f["name"]), (None, False))
            if f.get("inline"):
                json = ""
            elif json is None:
                # Field newer/older than k8s-openapi v1_37: keep it, spelled as Go would.
                first, *rest = f["name"].split("_")
                json = first + "".join(p[:1].upper() + p[1:] for p in rest)
                unmatched.append(f"{full}.{f['name']} -> {json}")
            kind = kind_expr(f["kind"])
            if f.get("map"):
                kind = f"Kind::Map(&{kind})"
            if f.get("inline"):
                presence = "Presence::Inline"
            elif f.get("map") or f["repeated"]:
                presence = "Presence::Always"
            elif isinstance(f["kind"], tuple):
                presence = "Presence::Always"
            elif required:
                presence = "Presence::Always"
            elif f"{full}.{json}" in pointers:
                presence = "Presence::Always"
                used_pointers.add(f"{full}.{json}")
            else:
                presence = "Presence::OmitZero"
            lines.append(
                f'        Field {{ tag: {f["tag"]}, json: "{json}", kind: {kind}, '
                f'repeated: {str(f["repeated"]).lower()}, presence: {presence} }},'
            )
        lines.append("    ] },")
    lines.append("];")
    lines.append("")
    lines.append("/// (group, version, kind) → index in [`MESSAGES`] of the kinds a body may carry.")
    lines.append("pub(super) static ROOTS: &[(&str, &str, &str, usize)] = &[")
    for group, version, kind, module, name in ROOTS:
        lines.append(f'    ("{group}", "{version}", "{kind}", {index[module + "." + name]}),')
    lines.append("];")
    text = "\n".join(lines) + "\n"

    stale = sorted(pointers - used_pointers)
    if stale:
        sys.exit("pointer fields not found in reachable messages: " + ", ".join(stale))
    for u in unmatched:
        print(f"note: no k8s-openapi key for {u}", file=sys.stderr)

    if check:
        current = open(OUT, encoding="utf-8").read() if os.path.exists(OUT) else ""
        if current != text:
            sys.exit(f"{OUT} is stale; run python3 tools/protobuf_schema.py")
        return
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {OUT}: {len(order)} messages", file=sys.stderr)


if __name__ == "__main__":
    main()
