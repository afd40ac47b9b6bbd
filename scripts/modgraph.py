#!/usr/bin/env python3
"""The module graph of luas's library, from the source text alone.

    python3 scripts/modgraph.py [--src DIR] [--top N]

Prints, for each top-level module of src/ (src/x.rs or src/x/), the other
top-level modules its code names: `use crate::x…`, a path `crate::x::…`
anywhere in an expression or type, the members of `use crate::{a, b::c}`,
and `super::…` paths that climb out of the module. Code under #[cfg(test)]
is left out (inline test modules and items, and the files of
`#[cfg(test)] mod tests;`), since tests may reach across layers.

Then the cycles among those modules (each strongly connected component of
more than one module, with one closed path through it), then the largest
files of src/ counted in lines of non-test code.

Exits 1 when there is a cycle, so CI can hold the graph acyclic
(docs: ARCHITECTURE.md, "Layout: one crate, modules in layers").

The reading is textual, not a compiler's: comments, strings and char
literals are blanked first so their text cannot count; macros that build
paths from pieces would be missed (luas has none).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def blank_literals(text: str) -> str:
    """Replaces comments, strings and char literals by spaces, keeping
    newlines so that line numbers and counts stay true."""
    out = []
    i, n = 0, len(text)

    def blank(segment: str) -> str:
        return "".join(c if c == "\n" else " " for c in segment)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(blank(text[i:end]))
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', text[i:i + 300])) and (
            i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")
        ):
            closing = '"' + m.group(1)
            end = text.find(closing, i + m.end())
            end = n if end < 0 else end + len(closing)
            out.append(blank(text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i:j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}', '{'), or a lifetime ('a),
            # which is code and stays.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:i + 12])
            if m:
                out.append(blank(m.group(0)))
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text: str, open_at: int) -> int:
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")
OUTLINE_MOD = re.compile(r"\s*(?:#\s*\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;")


def strip_test_code(code: str) -> tuple[str, list[str], int]:
    """Blanks every item that follows #[cfg(test)], returning the code left,
    the names of `#[cfg(test)] mod name;` declarations (their files are test
    code too) and how many lines the test items spanned."""
    test_mods, test_lines = [], 0
    while (m := CFG_TEST.search(code)) is not None:
        start = m.start()
        if (outline := OUTLINE_MOD.match(code, m.end())) is not None:
            test_mods.append(outline.group(1))
            end = outline.end()
        else:
            # The item ends at its first `;` if that comes before any `{`
            # (`use`, a unit struct), else at the brace matching that `{`.
            brace = code.find("{", m.end())
            semi = code.find(";", m.end())
            if brace < 0 or (0 <= semi < brace):
                end = (semi if semi >= 0 else len(code) - 1) + 1
            else:
                end = matching_brace(code, brace) + 1
        test_lines += code.count("\n", start, end) + 1
        code = code[:start] + "".join(c if c == "\n" else " " for c in code[start:end]) + code[end:]
    return code, test_mods, test_lines


def module_path(src: Path, file: Path) -> list[str]:
    """The module path of a file: src/a/b.rs and src/a/b/mod.rs are [a, b]."""
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return parts


def test_files(src: Path, file: Path, names: list[str]) -> set[Path]:
    """Files and directories declared by `#[cfg(test)] mod name;` in file."""
    base = file.parent if file.name in ("mod.rs", "lib.rs", "main.rs") else file.with_suffix("")
    found = set()
    for name in names:
        found.add(base / f"{name}.rs")
        found.add(base / name)
    return found


def referenced_modules(code: str, here: list[str]) -> set[str]:
    """Top-level module names a file's code refers to."""
    found = set()
    # `crate::x…`, including `use crate::x` and `crate::x::y::z` in code.
    for m in re.finditer(r"\bcrate\s*::\s*(" + IDENT + r"|\{)", code):
        if m.group(1) != "{":
            found.add(m.group(1))
            continue
        # `crate::{a, b::c, d::{e, f}}`: the first name of each element at
        # depth one.
        open_at = m.end() - 1
        body = code[open_at + 1:matching_brace(code, open_at)]
        depth, element = 0, []
        for c in body + ",":
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            if c == "," and depth == 0:
                first = re.match(r"\s*(" + IDENT + ")", "".join(element))
                if first and first.group(1) != "self":
                    found.add(first.group(1))
                element = []
            else:
                element.append(c)
    # `super::…` chains resolve against the file's own module path; only
    # those that climb to the crate root leave the top-level module.
    for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:super\s*::\s*)+)(" + IDENT + ")", code):
        levels = m.group(1).count("super")
        if levels == len(here):
            found.add(m.group(2))
    return found


def tarjan(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in nodes:
        if v not in index:
            visit(v)
    return components


def closed_path(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One cycle through the component's first module (breadth first, so the
    shortest one), as a list that starts and ends with that module."""
    start, members = component[0], set(component)
    parents = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, ()) & members):
            if w == start:
                path = [v]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return list(reversed(path)) + [start]
            if w not in parents:
                parents[w] = v
                queue.append(w)
    return component


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=root / "src")
    parser.add_argument("--top", type=int, default=12, help="how many of the largest files to list")
    args = parser.parse_args()
    src = args.src.resolve()

    files = sorted(src.rglob("*.rs"))
    stripped, test_lines, excluded = {}, {}, set()
    for file in files:
        code, test_mods, test_lines[file] = strip_test_code(blank_literals(file.read_text(encoding="utf-8")))
        stripped[file] = code
        excluded |= test_files(src, file, test_mods)

    def is_test(file: Path) -> bool:
        return any(file == e or e in file.parents for e in excluded)

    # lib.rs only lists the modules; main.rs is the binary, which reaches the
    # library as `luas::`, not `crate::`.
    library = [
        f for f in files if not is_test(f) and not (f.parent == src and f.name in ("lib.rs", "main.rs"))
    ]
    modules = sorted({module_path(src, f)[0] for f in library})
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for file in library:
        here = module_path(src, file)
        for target in referenced_modules(stripped[file], here):
            if target in edges and target != here[0]:
                edges[here[0]].add(target)

    print("module graph: the other top-level modules each one uses (src/, test code excluded)")
    width = max(map(len, modules), default=0)
    for module in modules:
        targets = ", ".join(sorted(edges[module])) or "-"
        print(f"  {module:<{width}} -> {targets}")
    print(f"  ({sum(map(len, edges.values()))} edges among {len(modules)} modules)")

    cycles = [c for c in tarjan(modules, edges) if len(c) > 1]
    print()
    if cycles:
        print(f"cycles: {len(cycles)} (strongly connected groups of modules)")
        for component in sorted(cycles):
            print(f"  {{{', '.join(component)}}}: e.g. {' -> '.join(closed_path(component, edges))}")
    else:
        print("cycles: none")

    sizes = []
    for file in files:
        if is_test(file):
            continue
        total = len(file.read_text(encoding="utf-8").splitlines())
        code = sum(1 for line in stripped[file].splitlines() if line.strip())
        sizes.append((total - test_lines[file], code, total, file.relative_to(src.parent)))
    sizes.sort(key=lambda s: (-s[0], str(s[3])))
    print()
    print("largest files: lines outside test code; of those, lines of code (not blank, not comment); all lines")
    print(f"  {'non-test':>8} {'code':>6} {'all':>6}")
    for non_test, code, total, path in sizes[: args.top]:
        print(f"  {non_test:>8} {code:>6} {total:>6}  {path}")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
