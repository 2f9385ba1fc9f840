#!/usr/bin/env python3
"""Generates `api/src/patch/schema/tables.rs`, the patch metadata that `api::patch` looks up
per field: which lists strategic merge patch merges by key (and by which), which lists are sets,
which maps/structs are atomic for server-side apply, which fields carry `retainKeys`.

Inputs:

* `k8s-openapi` 0.29.0, `src/v1_37` (the crates.io source in the cargo registry, where any
  build of the workspace puts it; when missing, the script runs `cargo fetch`):
  the type tree (each struct's fields and their types), each field's JSON name (its
  hand-written serde code spells them, e.g. `"podIPs" => Field::Key_pod_ips`), and its list
  and map kinds: the `DeepMerge` impls mirror the OpenAPI `x-kubernetes-list-type`,
  `x-kubernetes-list-map-keys` and `x-kubernetes-map-type` extensions (`list::map` with its
  key, `list::set`, `map::atomic`).
* `tools/patch_schema_tags.txt`: the root kinds, and what k8s-openapi does not carry, taken
  from the `k8s.io/api` types: the `patchStrategy`/`patchMergeKey` struct tags, and the
  server-side apply markers where they differ from DeepMerge (all `+listMapKey`s,
  `+structType=atomic`).

A type is emitted when it is on a path from a root kind to a field with non-default
behaviour; of each emitted type, only such fields. Types whose field lists are equal share one
constant.

Usage: `python3 tools/patch_schema.py [--check]` from the workspace root. `--check` exits 1 if
the committed file differs from what would be generated (`cargo test -p api` runs it).
"""

import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "api", "src", "patch", "schema", "tables.rs")
TAGS = os.path.join(ROOT, "tools", "patch_schema_tags.txt")
CARGO_HOME = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))

def find_src():
    pattern = os.path.join(CARGO_HOME, "registry", "src", "*", "k8s-openapi-0.29.0", "src", "v1_37")
    hits = sorted(glob.glob(pattern))
    if not hits:
        # k8s-openapi is a dependency of the workspace: fetching the workspace brings it.
        subprocess.run(["cargo", "fetch", "--quiet"], cwd=ROOT, check=True)
        hits = sorted(glob.glob(pattern))
    if not hits:
        sys.exit(f"k8s-openapi 0.29.0 not found in the cargo registry ({pattern})")
    return hits[-1]


def type_name(path):
    """`crate::api::core::v1::Pod` → `core.v1.Pod`;
    `crate::apimachinery::pkg::apis::meta::v1::ObjectMeta` → `meta.v1.ObjectMeta`."""
    parts = path.split("::")
    if parts[0] == "crate":
        parts = parts[1:]
    if parts[0] == "api":
        parts = parts[1:]
    elif parts[:3] == ["apimachinery", "pkg", "apis"]:
        parts = parts[3:]
    return ".".join(parts)


def read_structs(src):
    """type → list of fields (k8s-openapi order: by Rust name), each
    {rust, json, ty, strategy}, from every struct of k8s-openapi's v1_37 tree."""
    structs = {}
    for path in sorted(glob.glob(os.path.join(src, "**", "*.rs"), recursive=True)):
        text = open(path, encoding="utf-8").read()
        m = re.search(r"^pub struct (\w+) \{\n(.*?)^\}", text, re.M | re.S)
        if not m:
            continue
        module = "crate::" + "::".join(os.path.relpath(path, src).split(os.sep)[:-1])
        name = type_name(f"{module}::{m.group(1)}")
        json = {rust: key for key, rust in re.findall(r'"(\w+)" => Field::Key_(\w+),', text)}
        fields = []
        for fm in re.finditer(r"^    pub (\w+): (.+),$", m.group(2), re.M):
            rust, ty = fm.groups()
            refs = re.findall(r"crate::[\w:]+", ty)
            fields.append({
                "rust": rust,
                "json": json.get(rust, rust),
                "ty": type_name(refs[-1]) if refs else None,
                "strategy": None,
            })
        merge = re.search(r"fn merge_from\(&mut self, other: Self\) \{\n(.*?)^    \}", text, re.M | re.S)
        by_rust = {f["rust"]: f for f in fields}
        for sm in re.finditer(
            r"crate::merge_strategies::(list|map)::(\w+)\(\s*&mut self\.(\w+),(.*?)\);\n",
            merge.group(1) if merge else "",
            re.S,
        ):
            kind, strategy, rust, rest = sm.groups()
            keys = re.findall(r"lhs\.([\w.]+) == rhs\.\1", rest)
            by_rust[rust]["strategy"] = (kind, strategy, keys)
        structs[name] = fields
    return structs


def read_tags():
    """The tags file: ((type, json field) → {patchStrategy, patchMergeKey, ssa}, [(kind, type)])."""
    tags, kinds = {}, []
    for n, line in enumerate(open(TAGS, encoding="utf-8"), 1):
        words = line.split("#", 1)[0].split()
        if len(words) == 3 and words[0] == "kind":
            kinds.append((words[1], words[2]))
            continue
        if not words:
            continue
        entry = dict(item.partition("=")[::2] for item in words[2:])
        if len(words) < 3 or not set(entry) <= {"patchStrategy", "patchMergeKey", "ssa"}:
            sys.exit(f"{TAGS}:{n}: cannot read {line.strip()!r}")
        tags[(words[0], words[1])] = entry
    return tags, sorted(kinds)


def rust_keys(keys):
    return "&[" + ", ".join(f'"{k}"' for k in keys) + "]"


# patchStrategy → the Smp variant, with the patchMergeKey as argument when it takes one.
SMP = {
    None: "Smp::None",
    "merge": "Smp::MergePrimitives",
    "merge+key": 'Smp::Merge("{}")',
    "merge,retainKeys+key": 'Smp::MergeRetainKeys("{}")',
    "retainKeys": "Smp::RetainKeys",
    "replace": "Smp::Replace",
}

# The tags file's `ssa=` values → the Ssa variant, with the list keys as argument.
SSA = {
    "map": "Ssa::Map({})",
    "map-atomic": "Ssa::MapAtomic({})",
    "set": "Ssa::Set",
    "atomic": "Ssa::AtomicMap",
    "default": "Ssa::Default",
}


def smp_expr(tag):
    strategy, key = tag.get("patchStrategy"), tag.get("patchMergeKey")
    form = SMP.get(f"{strategy}+key" if key else strategy)
    if form is None:
        sys.exit(f"unknown patchStrategy {strategy!r} (patchMergeKey {key!r})")
    return form.format(key)


def ssa_expr(structs, field, tag):
    override = tag.get("ssa")
    if override is not None:
        kind, _, keys = override.partition(":")
        if kind not in SSA:
            sys.exit(f"unknown ssa {override!r}")
        return SSA[kind].format(rust_keys(keys.split(",")))
    strategy = field["strategy"]
    if strategy is None:
        return "Ssa::Default"
    kind, name, keys = strategy
    if (kind, name) == ("list", "map"):
        item = {f["rust"]: f["json"] for f in structs.get(field["ty"], [])}
        missing = [k for k in keys if k not in item]
        if missing or not keys:
            sys.exit(f"list map key {keys} of {field['json']} is no field of {field['ty']}; tag it")
        return f"Ssa::Map({rust_keys([item[k] for k in keys])})"
    if (kind, name) == ("list", "set"):
        return "Ssa::Set"
    if (kind, name) == ("map", "atomic"):
        return "Ssa::AtomicMap"
    return "Ssa::Default"


def generate():
    structs = read_structs(find_src())
    tags, kinds = read_tags()
    for ty, field in tags:
        if not any(f["json"] == field for f in structs.get(ty, [])):
            sys.exit(f"{TAGS}: {ty}.{field} is no field of k8s-openapi's v1_37 types")

    own = {}  # type → [(json, field type, smp, ssa)] of its non-default fields

    def behaviour(ty):
        if ty not in own:
            out = []
            for f in structs.get(ty, []):
                tag = tags.get((ty, f["json"]), {})
                out.append((f, smp_expr(tag), ssa_expr(structs, f, tag)))
            own[ty] = out
        return own[ty]

    listed = {}  # type → emitted fields; None while being visited (recursive types)

    def visit(ty):
        if ty in listed:
            return listed[ty] is not None and bool(listed[ty])
        listed[ty] = None
        fields = []
        for f, smp, ssa in behaviour(ty):
            nested = f["ty"] is not None and f["ty"] in structs and visit(f["ty"])
            if nested or smp != "Smp::None" or ssa != "Ssa::Default":
                fields.append((f["json"], f["ty"] if nested else None, smp, ssa))
        listed[ty] = fields
        return bool(fields)

    for _, ty in kinds:
        if ty not in structs:
            sys.exit(f"root {ty} is no k8s-openapi type")
        visit(ty)
    types = sorted(t for t, fields in listed.items() if fields)

    def fld(f):
        json, ty, smp, ssa = f
        ty = f'Some("{ty}")' if ty else "None"
        return f'fld("{json}", {ty}, {smp}, {ssa})'

    # Equal field lists (Container and EphemeralContainer) share one constant.
    shared = {}
    for t in types:
        key = tuple(listed[t])
        if len(key) > 2 and sum(tuple(listed[u]) == key for u in types) > 1:
            short = t.rsplit(".", 1)[1]
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", short).upper()
            shared.setdefault(key, (f"{snake}_FIELDS", t))

    lines = [
        "// @generated by tools/patch_schema.py from k8s-openapi 0.29.0 (v1_37) and",
        "// tools/patch_schema_tags.txt. Do not edit; rerun the generator.",
        "",
        "use super::{FieldSchema, Smp, Ssa, TypeSchema, fld};",
        "",
    ]
    for key, (const, first) in shared.items():
        names = ", ".join(f"`{t}`" for t in types if tuple(listed[t]) == key)
        lines.append(f"/// The fields of {names}.")
        lines.append("#[rustfmt::skip]")
        lines.append(f"const {const}: &[FieldSchema] = &[")
        lines.extend(f"    {fld(f)}," for f in key)
        lines.append("];")
        lines.append("")
    lines.append("/// Every type on a path from [`KINDS`] to a field with non-default behaviour, with")
    lines.append("/// those fields.")
    lines.append("#[rustfmt::skip]")
    lines.append("pub(crate) static TYPES: &[TypeSchema] = &[")
    lines.append("    TypeSchema {")
    lines.append('        name: "generic.Object",')
    lines.append('        fields: &[fld("metadata", Some("meta.v1.ObjectMeta"), Smp::None, Ssa::Default)],')
    lines.append("    },")
    for t in types:
        fields = listed[t]
        lines.append("    TypeSchema {")
        lines.append(f'        name: "{t}",')
        if tuple(fields) in shared:
            lines.append(f"        fields: {shared[tuple(fields)][0]},")
        elif len(fields) == 1:
            lines.append(f"        fields: &[{fld(fields[0])}],")
        else:
            lines.append("        fields: &[")
            lines.extend(f"            {fld(f)}," for f in fields)
            lines.append("        ],")
        lines.append("    },")
    lines.append("];")
    lines.append("")
    lines.append("/// The type of each top-level kind.")
    lines.append("#[rustfmt::skip]")
    lines.append("pub(crate) static KINDS: &[(&str, &str)] = &[")
    lines.extend(f'    ("{k}", "{t}"),' for k, t in kinds)
    lines.append("];")
    return "\n".join(lines) + "\n", len(types)


def main():
    check = "--check" in sys.argv[1:]
    text, count = generate()
    if check:
        current = open(OUT, encoding="utf-8").read() if os.path.exists(OUT) else ""
        if current != text:
            sys.exit(f"{OUT} is stale; run python3 tools/patch_schema.py")
        return
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {OUT}: {count} types", file=sys.stderr)


if __name__ == "__main__":
    main()
