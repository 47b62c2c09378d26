"""Strings from vector files cannot change the C that ``sidkit vectors emit`` writes.

A vector file is input: its source name, comments and header reach the emitted C as string
literals and comments. Under ``gcc -std=c11`` trigraphs are live, so ``??/`` in a name was a
backslash that ate the closing quote. The oracle here is gcc itself: each hostile string is
compiled (``-std=c11 -Werror=trigraphs -Wall -Wextra -pedantic -Werror``) and the program
prints the bytes it got, which must be exactly the string's UTF-8 bytes; every comment must
leave the code around it intact.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidkit.conformance import load_vector_file
from sidkit.conformance._emit import emit
from sidkit.conformance._emit._literals import c_comment, c_string

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "conformance" / "vectors"
CFLAGS = ["-std=c11", "-trigraphs", "-Wall", "-Wextra", "-pedantic", "-Werror", "-Werror=trigraphs"]

HOSTILE = [
    "??/",
    'a??/"; int injected = 1; //',
    "??=define X 1",
    "??' ??! ??- ??( ??) ??< ??> ???/",
    "end\\",
    '"',
    "\\x41\\101",
    "\x1b[2J\x1b]0;title\x07",
    "line\nbreak\r\n",
    "*/ int injected; /*",
    "nul\x00byte",
    "é ∑ 😀",
    "\udcff lone surrogate",
    "\x7f\x80",
    "",
]


def _compile_and_run(texts: list[str], tmp: Path) -> list[bytes]:
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler (gcc) to hold the emitted literals to")
    lines = ["#include <stdio.h>", ""]
    for i, text in enumerate(texts):
        lines.append(f"/* {c_comment(text)} */")
        lines.append(f"static const char s{i}[] = {c_string(text)}; /* {c_comment(text)} */")
    lines += ["", "static void show(const char *s, size_t n)", "{"]
    lines += ["\tfor (size_t i = 0; i < n; i++)", '\t\tprintf("%02x", (unsigned char)s[i]);']
    lines += ['\tprintf("\\n");', "}", "", "int main(void)", "{"]
    lines += [f"\tshow(s{i}, sizeof(s{i}) - 1);" for i in range(len(texts))]
    lines += ["\treturn 0;", "}", ""]
    src = tmp / "strings.c"
    src.write_text("\n".join(lines))
    exe = tmp / "strings"
    proc = subprocess.run(
        ["gcc", *CFLAGS, str(src), "-o", str(exe)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return [bytes.fromhex(line) for line in out.splitlines()]


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def test_hostile_strings_compile_to_exactly_their_bytes(tmp_path: Path) -> None:
    assert _compile_and_run(HOSTILE, tmp_path) == [_utf8(t) for t in HOSTILE]


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(alphabet=st.characters(codec=None), max_size=12), min_size=40, max_size=40))
def test_any_text_compiles_to_exactly_its_bytes(tmp_path: Path, texts: list[str]) -> None:
    texts = [t + suffix for t, suffix in zip(texts, ["??/", "?", "\\", ""] * 10, strict=True)]
    assert _compile_and_run(texts, tmp_path) == [_utf8(t) for t in texts]


def test_literals_are_plain_ascii_and_octal_escapes() -> None:
    for text in HOSTILE:
        literal = c_string(text)
        assert literal.isascii() and literal.isprintable()
        inner = literal[1:-1]
        assert "??" not in inner and '"' not in inner
        assert re.fullmatch(r"(?:[ -!#->@-\[\]-~]|\\[0-7]{3})*", inner), literal
        comment = c_comment(text)
        assert comment.isascii() and comment.isprintable()
        assert "??" not in comment and "*/" not in comment and "/*" not in comment


def test_a_hostile_vector_file_emits_c_that_compiles(tmp_path: Path) -> None:
    """End to end: names, comments and header of a vector file in the emitted table."""
    if shutil.which("gcc") is None:
        pytest.skip("no C compiler (gcc) to compile the emitted table")
    doc = json.loads((VECTORS / "published-jhash.json").read_text())
    doc["header"] = ["??/", "*/ int injected; /*", "end\\"]
    group = doc["testGroups"][0]
    group["source"]["name"] = 'lookup3 ??/" injected'
    group["source"]["version"] = "v1??/"
    group["comment"] = "??=define jhash 0"
    for i, test in enumerate(group["tests"]):
        test["comment"] = HOSTILE[i % len(HOSTILE)]
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(doc))
    vf = load_vector_file(path)
    code = emit([(vf, g) for g in vf.groups], "c", command="sidkit vectors emit ??/")
    # A stand-in jhash: what is checked is that the tables parse as the emitter meant them.
    prelude = (
        "#include <stdint.h>\n#include <stddef.h>\n#include <stdio.h>\n"
        "typedef uint8_t u8; typedef uint32_t u32; typedef uint64_t u64;\n"
        "static u32 jhash(const void *k, u32 n, u32 iv) { (void)k; return n + iv; }\n"
        "#define SIDKIT_VECTORS_NO_INCLUDES 1\n"
    )
    src = tmp_path / "emitted.c"
    src.write_text(
        prelude + code + "\nint main(void) { return sidkit_jhash_vectors[0].group == NULL; }\n"
    )
    proc = subprocess.run(
        ["gcc", "-std=c11", "-trigraphs", "-Werror=trigraphs", "-fsyntax-only", str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        c_string(f"hostile.json: jhash, kernel -, published {group['source']['name']} v1??/")
        in code
    )
