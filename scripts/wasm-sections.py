"""The sections of a wasm module: lists them with their raw and gzip sizes, or drops named
custom sections in place, every other byte unchanged. scripts/build.sh drops the `name`
section of the release wasm with it; docs/size.md says why that is safe.

Usage: python3 scripts/wasm-sections.py build/index_bg.wasm
       python3 scripts/wasm-sections.py --drop name build/index_bg.wasm"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path
from typing import Iterator, NamedTuple

MAGIC = b"\0asm\x01\0\0\0"
KINDS = ["custom", "type", "import", "function", "table", "memory", "global", "export",
         "start", "element", "code", "data", "datacount", "tag"]


class Section(NamedTuple):
    name: str  # "code", "data", ... or "custom:<its name>"
    raw: bytes  # the whole section: id, size and body


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
        size, body = uleb128(module, at + 1)
        end = body + size
        if kind == 0:
            length, name = uleb128(module, body)
            label = "custom:" + module[name:name + length].decode()
        else:
            label = KINDS[kind] if kind < len(KINDS) else f"unknown:{kind}"
        yield Section(label, module[at:end])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wasm", type=Path)
    parser.add_argument("--drop", action="append", default=[], metavar="NAME",
                        help="drop the custom section NAME (repeatable), in place")
    args = parser.parse_args()
    module = args.wasm.read_bytes()
    if args.drop:
        stripped = without(module, set(args.drop))
        args.wasm.write_bytes(stripped)
        print(f"{args.wasm}: dropped {', '.join(args.drop)}: "
              f"{len(module):,} -> {len(stripped):,} bytes")
    else:
        print(table(module))


if __name__ == "__main__":
    main()
