#!/usr/bin/env python3
"""Import cycles between the modules of one crate.

Usage: tools/module_cycles.py <crate>/src [-v]

Reads every `*.rs` under the directory (test files and `#[cfg(test)] mod tests` tails aside),
collects the `crate::…` and `super::…` paths each module names, resolves each to the longest
module it starts with, and prints the strongly connected components of that graph: each cycle
with the edges that close it. A module naming its own ancestor (a child using its parent's
types) is not an edge. `-v` also prints every module's edges. Exit status 1 when a cycle exists.
"""
import os, re, sys
src = sys.argv[1]
edges = {}
mods = set()
def modname(path):
    rel = os.path.relpath(path, src)[:-3]
    parts = rel.split('/')
    if parts[-1] in ('mod', 'lib', 'main'): parts = parts[:-1]
    return '::'.join(parts) or 'crate'
for d, _, fs in os.walk(src):
    for f in fs:
        if not f.endswith('.rs'): continue
        p = os.path.join(d, f)
        if f == 'tests.rs' or '/tests/' in p: continue
        m = modname(p)
        text = open(p).read()
        # drop #[cfg(test)] mod tests { ... } tails
        i = text.find('#[cfg(test)]\nmod tests')
        if i >= 0: text = text[:i]
        text = re.sub(r'//.*', '', text)
        mods.add(m)
        for u in re.findall(r'crate::((?:\w+::)*\w+)', text):
            edges.setdefault(m, set()).add(u)
        # super:: paths, relative to the module's parent
        parent = m.split('::')[:-1]
        for u in re.findall(r'(?<![\w:])super::((?:\w+::)*\w+)', text):
            if u.startswith('super::'): continue
            edges.setdefault(m, set()).add('::'.join(parent + [u]))
        for g0 in re.findall(r'(?<![\w:])super::\{([^}]*)\}', text):
            for part in g0.split(','):
                part = part.strip()
                if part: edges.setdefault(m, set()).add('::'.join(parent + [part.replace(' ', '')]))
        # grouped: use crate::{a, b::c}
        for g in re.findall(r'crate::\{([^}]*)\}', text):
            for part in g.split(','):
                part = part.strip()
                if part: edges.setdefault(m, set()).add(part.replace(' ', ''))
# resolve each path to the longest module prefix
def resolve(path):
    parts = path.split('::')
    for k in range(len(parts), 0, -1):
        cand = '::'.join(parts[:k])
        if cand in mods: return cand
    return None
g = {m: set() for m in mods}
for m, us in edges.items():
    for u in us:
        t = resolve(u)
        if t and t != m and not m.startswith(t + '::') and not t.startswith(m + '::'):
            g[m].add(t)
# Tarjan
idx, low, on, st, out, n = {}, {}, set(), [], [], [0]
def sc(v):
    idx[v] = low[v] = n[0]; n[0] += 1; st.append(v); on.add(v)
    for w in g[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: out.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in sorted(g):
    if v not in idx: sc(v)
if '-v' in sys.argv:
    for m in sorted(g): print(m, '->', ', '.join(sorted(g[m])))
for c in out:
    print('cycle:', ' '.join(c))
    for a in c:
        print('   ', a, '->', ', '.join(sorted(x for x in g[a] if x in c)))
sys.exit(1 if out else 0)
