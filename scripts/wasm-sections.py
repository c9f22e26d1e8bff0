"""The sections of a wasm module: lists them with their raw and gzip sizes, drops named
custom sections in place (every other byte unchanged), or, in a module that still has its
`name` section, sums the code of its functions by name. scripts/build.sh drops the `name`
section of the release wasm with it; docs/size.md says why that is safe and what the code
is made of.

Usage: python3 scripts/wasm-sections.py build/index_bg.wasm
       python3 scripts/wasm-sections.py --drop name build/index_bg.wasm
       python3 scripts/wasm-sections.py --functions build/index_bg.wasm          (largest 25)
       python3 scripts/wasm-sections.py --functions build/index_bg.wasm \\
           --group 'serde=serde|Deserialize' --group 'chrono=chrono'    (first match wins)"""

from __future__ import annotations

import argparse
import gzip
import re
from pathlib import Path
from typing import Iterator, NamedTuple

MAGIC = b"\0asm\x01\0\0\0"
KINDS = ["custom", "type", "import", "function", "table", "memory", "global", "export",
         "start", "element", "code", "data", "datacount", "tag"]


class Section(NamedTuple):
    name: str  # "code", "data", ... or "custom:<its name>"
    raw: bytes  # the whole section: id, size and body
    body: bytes  # the contents after the id and size (after the name, for a custom section)


def uleb128(data: bytes, at: int) -> tuple[int, int]:
    """The unsigned LEB128 number at `at`, and the offset just after it."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def sections(module: bytes) -> Iterator[Section]:
    if module[:8] != MAGIC:
        raise SystemExit("not a wasm module (version 1)")
    at = 8
    while at < len(module):
        kind = module[at]
        size, start = uleb128(module, at + 1)
        end = start + size
        if kind == 0:
            length, name = uleb128(module, start)
            label, start = "custom:" + module[name:name + length].decode(), name + length
        else:
            label = KINDS[kind] if kind < len(KINDS) else f"unknown:{kind}"
        yield Section(label, module[at:end], module[start:end])
        at = end


def without(module: bytes, custom: set[str]) -> bytes:
    """The module with the custom sections named in `custom` left out."""
    dropped = {"custom:" + name for name in custom}
    return MAGIC + b"".join(s.raw for s in sections(module) if s.name not in dropped)


def gz(data: bytes) -> int:
    return len(gzip.compress(data, 9))


def table(module: bytes) -> str:
    rows = [f"{'section':24} {'raw bytes':>11} {'share':>6} {'gzip -9 alone':>14}"]
    for s in sections(module):
        share = 100 * len(s.raw) / len(module)
        rows.append(f"{s.name:24} {len(s.raw):>11,} {share:>5.1f}% {gz(s.raw):>14,}")
    rows.append(f"{'whole module':24} {len(module):>11,} {'':>6} {gz(module):>14,}")
    return "\n".join(rows)


def imported_functions(imports: bytes) -> int:
    """How many functions the import section brings in (they come first in the index space)."""
    count, at = uleb128(imports, 0)
    functions = 0
    for _ in range(count):
        for _name in range(2):  # module, field
            length, at = uleb128(imports, at)
            at += length
        kind, at = imports[at], at + 1
        if kind == 0:  # function: type index
            functions += 1
            _, at = uleb128(imports, at)
        elif kind in (1, 2):  # table: element type, then limits; memory: limits
            if kind == 1:
                at += 1
            flags, at = uleb128(imports, at)
            _, at = uleb128(imports, at)
            if flags & 1:
                _, at = uleb128(imports, at)
        elif kind == 3:  # global: value type, mutability
            at += 2
        elif kind == 4:  # tag (exception handling): attribute, type index
            _, at = uleb128(imports, at + 1)
        else:
            raise SystemExit(f"import kind {kind} not read by this script")
    return functions


def functions(module: bytes) -> list[tuple[str, bytes]]:
    """Each defined function's name (from the `name` section) and body (from `code`)."""
    parts = {s.name: s.body for s in sections(module)}
    if "custom:name" not in parts:
        raise SystemExit("no name section: build with GATE_WASM_NAMES=1 bash scripts/build.sh")
    names, names_at = {}, 0
    subsections = parts["custom:name"]
    while names_at < len(subsections):
        kind = subsections[names_at]
        size, start = uleb128(subsections, names_at + 1)
        if kind == 1:  # function names
            count, at = uleb128(subsections, start)
            for _ in range(count):
                index, at = uleb128(subsections, at)
                length, at = uleb128(subsections, at)
                names[index] = subsections[at:at + length].decode("utf-8", "replace")
                at += length
        names_at = start + size
    first = imported_functions(parts["import"])
    code = parts["code"]
    count, at = uleb128(code, 0)
    out = []
    for i in range(count):
        size, at = uleb128(code, at)
        out.append((names.get(first + i, f"func[{first + i}]"), code[at:at + size]))
        at += size
    return out


def function_table(module: bytes, groups: list[str]) -> str:
    funcs = functions(module)
    total = sum(len(body) for _, body in funcs)
    rows = [f"{'':60} {'code bytes':>11} {'share':>6} {'gzip -9 alone':>14} {'functions':>10}"]

    def row(label: str, bodies: list[bytes]) -> str:
        raw = sum(len(b) for b in bodies)
        return (f"{label[:60]:60} {raw:>11,} {100 * raw / total:>5.1f}% "
                f"{gz(b''.join(bodies)):>14,} {len(bodies):>10,}")

    if not groups:
        for name, body in sorted(funcs, key=lambda f: -len(f[1]))[:25]:
            rows.append(row(name, [body]))
    else:
        patterns = [(label, re.compile(rx)) for label, _, rx in (g.partition("=") for g in groups)]
        members: dict[str, list[bytes]] = {label: [] for label, _ in patterns + [("other", None)]}
        for name, body in funcs:
            label = next((label for label, rx in patterns if rx.search(name)), "other")
            members[label].append(body)
        rows += [row(label, bodies) for label, bodies in members.items()]
    rows.append(row("all functions", [body for _, body in funcs]))
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wasm", type=Path)
    parser.add_argument("--drop", action="append", default=[], metavar="NAME",
                        help="drop the custom section NAME (repeatable), in place")
    parser.add_argument("--functions", action="store_true",
                        help="code bytes by function name (needs the name section)")
    parser.add_argument("--group", action="append", default=[], metavar="LABEL=REGEX",
                        help="with --functions: sum the functions whose name matches REGEX")
    args = parser.parse_args()
    module = args.wasm.read_bytes()
    if args.drop:
        stripped = without(module, set(args.drop))
        args.wasm.write_bytes(stripped)
        print(f"{args.wasm}: dropped {', '.join(args.drop)}: "
              f"{len(module):,} -> {len(stripped):,} bytes")
    elif args.functions:
        print(function_table(module, args.group))
    else:
        print(table(module))


if __name__ == "__main__":
    main()
