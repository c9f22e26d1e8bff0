"""Tests of scripts/wasm-sections.py, which scripts/build.sh uses to drop the release wasm's
`name` section (docs/size.md): on small modules written here byte by byte, and on the
release build itself (build/index_bg.wasm, which scripts/test.sh builds before pytest).
Run: python -m pytest tests/ci/test_wasm_sections.py -q"""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("wasm_sections", ROOT / "scripts" / "wasm-sections.py")
wasm_sections = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(wasm_sections)


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def name(text: str) -> bytes:
    return uleb(len(text)) + text.encode()


def section(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + uleb(len(body)) + body


def custom(label: str, payload: bytes) -> bytes:
    return section(0, name(label) + payload)


TYPES = section(1, vec([b"\x60\x00\x00"]))  # one type: () -> ()
IMPORTS = section(2, vec([name("env") + name("log") + b"\x00\x00"]))  # function 0
FUNCTIONS = section(3, vec([b"\x00", b"\x00"]))  # functions 1 and 2
BODIES = [b"\x00\x0b", b"\x00\x01\x01\x0b"]  # no locals; end / nop nop end
CODE = section(10, vec([uleb(len(b)) + b for b in BODIES]))
NAMES = custom("name", b"\x01" + uleb(len(fn := vec([uleb(1) + name("first"),
                                                      uleb(2) + name("second")]))) + fn)
PRODUCERS = custom("producers", vec([name("sdk") + vec([name("workers-rs") + name("0.8.7")])]))
FEATURES = custom("target_features", vec([b"+" + name("bulk-memory")]))
MODULE = wasm_sections.MAGIC + TYPES + IMPORTS + FUNCTIONS + CODE + NAMES + PRODUCERS + FEATURES


def test_sections_are_listed_in_order_with_custom_sections_by_name():
    listed = [s.name for s in wasm_sections.sections(MODULE)]
    assert listed == ["type", "import", "function", "code", "custom:name",
                      "custom:producers", "custom:target_features"]


def test_dropping_the_name_section_keeps_every_other_byte():
    stripped = wasm_sections.without(MODULE, {"name"})
    assert stripped == (wasm_sections.MAGIC + TYPES + IMPORTS + FUNCTIONS + CODE + PRODUCERS
                        + FEATURES)


def test_functions_are_named_after_the_imported_ones():
    assert wasm_sections.functions(MODULE) == [("first", BODIES[0]), ("second", BODIES[1])]


def test_the_release_wasm_ships_without_names_and_keeps_target_features():
    wasm = ROOT / "build" / "index_bg.wasm"
    assert wasm.exists(), "build the Worker first: bash scripts/build.sh"
    kept = {s.name for s in wasm_sections.sections(wasm.read_bytes())}
    assert "custom:name" not in kept, "a release build (scripts/build.sh) drops the name section"
    assert {"code", "data", "custom:target_features"} <= kept
