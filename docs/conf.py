"""Sphinx configuration for sidkit's documentation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE / "_ext"))

project = "sidkit"
author = "sidkit developers"
copyright = "2026, the sidkit developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.graphviz",
    "sidkit_cliref",
    "sidkit_layers",
    "sidkit_figures",  # the demo's picture, drawn at build time (docs/_ext/sidkit_figures.py)
    "sidkit_pagecheck",  # errors the theme draws into a page fail the build
]
# The diagrams (the architecture picture, docs/diagrams/*.dot) are rendered by Debian's graphviz
# at build time, as SVG.
graphviz_output_format = "svg"
html_theme = "furo"
html_title = "sidkit"
html_static_path = ["_static"]
html_css_files = ["sidkit.css"]  # wide tables and code scroll with a visible edge, or wrap
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = True
# Type aliases and private-module classes that autodoc names but cannot link: a private module
# is any path with a segment that starts with "_" (sidkit._validate, sidkit.hashing._jhash).
nitpick_ignore_regex = [
    (
        r"py:class",
        r"(sidkit(\.\w+)*\._\w+.*|_[a-z]\w*\.\w+|BytesLike|Address|attrs\..*|collections\.abc\..*|Callable.*)",
    ),
    (r"py:class", r"(bytes|bytearray|memoryview|int|str|object|ipaddress\..*|pathlib\..*)"),
    (r"py:class", r"(Any|Path|Mapping.*|Sequence.*|Iterator.*|KernelVersion|Era|By|Progress)"),
    (r"py:.*", r"Literal.*"),
    (r"py:class", r"pluggy\..*"),
    (r"py:class", r"(socket\.socket|random\.(System)?Random|sidkit\.bpf\.netns\.T|.*\._[A-Z]\w*)"),
]
exclude_patterns = ["_build", "_generated"]  # _generated: included by other pages, never pages

# Examples that need the live kernel (a private network namespace, bpf(2)) are marked
# ``:skipif: not sidkit_live``. They run wherever the kernel allows them, and always under
# SIDKIT_REQUIRE_ORACLES=1 (CI), where a refusal must fail the build instead of hiding.
doctest_global_setup = """
import os as _sidkit_os
from sidkit.bpf._syscall import bpf_available as _sidkit_bpf_available
from sidkit.bpf.netns import netns_available as _sidkit_netns_available
sidkit_live = _sidkit_os.environ.get("SIDKIT_REQUIRE_ORACLES") == "1" or (
    _sidkit_netns_available() or _sidkit_bpf_available()
) is None
"""


def _provenance(e: Any) -> str:
    """The row's status, commit, mainline release and note, as one reST cell."""
    cell = f"*{e.status or 'unclassified'}*"
    if e.commit:
        cell += f" ``{e.commit}``"
    if e.mainline:
        cell += f" (v{e.mainline})"
    if e.not_in:
        cell += "; not in " + ", ".join(str(v) for v in e.not_in)
    return cell + (f"; {e.note}" if e.note else "")


def _eras_table() -> None:
    """Render sidkit.kernel.ERAS into an included reST file, so the docs show the data."""
    from sidkit.kernel import ERAS  # noqa: PLC0415 (importable only after sys.path is set)

    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :width: 100%",
        "   :widths: 16 7 14 46 17",
        "",
        "   * - function",
        "     - from",
        "     - variant",
        "     - source and evidence",
        "     - provenance",
    ]
    for e in ERAS:
        back = ""
        if e.backports:
            back = " Backported to: " + ", ".join(str(b) for b in e.backports) + "."
        lines += [
            f"   * - ``{e.function}``",
            f"     - {e.since}",
            f"     - {e.variant}",
            f"     - ``{e.source}`` -- {e.evidence}.{back}",
            f"     - {_provenance(e)}",
        ]
    (out / "eras_table.rst").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _eras_by_release() -> None:
    """sidkit.kernel.ERAS turned around: one row per release, listing what changed in it.

    The whole table (one row per function and form) is the reference; a reader who runs one
    kernel asks the other way round -- what did 5.4 change, what does 6.13 do -- and should
    not have to scan ninety rows for it. Rows come from the same data, so they cannot drift.
    """
    from sidkit.kernel import ERAS  # noqa: PLC0415 (importable only after sys.path is set)

    by_release: dict[Any, list[Any]] = {}
    for e in ERAS:
        by_release.setdefault(e.since, []).append(e)
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :width: 100%",
        "   :widths: 12 88",
        "",
        "   * - release",
        "     - what changes (function: the form from this release on)",
    ]
    first_release = min(by_release)
    for since in sorted(by_release):
        rows = by_release[since]
        if since == first_release:  # the opening forms: one compact sentence
            forms = ", ".join(f"``{e.function}`` *{e.variant}*" for e in rows)
            lines += [
                f"   * - {since}",
                f"     - the modelled range opens (the first release in git history): {forms}",
            ]
            continue
        lines += [f"   * - {since}"]
        # functions that took the same form from the same commit share one line
        same: dict[tuple[str, str, str], list[str]] = {}
        for e in rows:
            also = ", ".join(str(b) for b in e.backports)
            same.setdefault((e.variant, e.commit or "", also), []).append(f"``{e.function}``")
        for k, ((variant, commit, also), names) in enumerate(same.items()):
            text = f"{', '.join(names)}: *{variant}*"
            if commit:
                text += f" (``{commit}``)"
            if also:
                text += f"; also in stable {also}"
            lines.append(f"     {'- ' if k == 0 else '  '}- {text}")
    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    (out / "eras_by_release.rst").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _vector_counts() -> None:
    """Count the conformance vectors per function and oracle, for the conformance page."""
    from sidkit.conformance import iter_vector_files, load_vector_file  # noqa: PLC0415

    counts: dict[tuple[str, str], int] = {}
    for path in iter_vector_files(HERE.parent / "conformance" / "vectors"):
        for g in load_vector_file(path).groups:
            label = f"{g.oracle}: {g.source['name']}" + (f" ({g.kernel})" if g.kernel else "")
            key = (g.function, label)
            counts[key] = counts.get(key, 0) + len(g.tests)
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :width: 100%",
        "   :widths: 25 60 15",
        "",
        "   * - function",
        "     - oracle",
        "     - vectors",
    ]
    for (fn, label), n in sorted(counts.items()):
        lines += [f"   * - ``{fn}``", f"     - {label}", f"     - {n}"]
    total = sum(counts.values())
    lines += ["", f"{total} vectors in all."]
    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    (out / "vector_counts.rst").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _face_constants() -> None:
    """Document the constants each public face re-exports, with their doc comments.

    A face (``sidkit.flows``, ``sidkit.kernel`` ...) imports its constants from the private
    module that defines and documents them; autodoc reads doc comments only from the module it
    documents, so it would drop them. This writes ``_generated/constants-<face>.rst`` with a
    ``py:data`` entry per constant, its text taken from the defining module's comment, so the
    text is written once, beside the value.
    """
    import importlib  # noqa: PLC0415
    import inspect  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415

    from sphinx.pycode import ModuleAnalyzer  # noqa: PLC0415

    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    for face_name in FACES:
        face = importlib.import_module(face_name)
        privates = [face_name]
        if hasattr(face, "__path__"):
            privates += [m.name for m in pkgutil.iter_modules(face.__path__, face_name + ".")]
        else:  # a face module beside its package (sidkit.plugin -> sidkit.extract._*)
            package = importlib.import_module(face_name.rpartition(".")[0] + ".extract")
            privates += [m.name for m in pkgutil.iter_modules(package.__path__, "sidkit.extract.")]
        lines: list[str] = []
        for name in face.__all__:
            obj = getattr(face, name)
            if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
                continue
            for module_name in privates:
                module = importlib.import_module(module_name)
                docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
                if module.__dict__.get(name) is obj and ("", name) in docs:
                    lines += [f".. py:data:: {name}", f"   :module: {face_name}", ""]
                    lines += [f"   {line}" if line else "" for line in docs[("", name)]]
                    break
        (out / f"constants-{face_name}.rst").write_text("\n".join(lines) + "\n", encoding="utf-8")


#: The public faces whose constants _face_constants() documents (docs/api/*.rst include them).
FACES = (
    "sidkit.kernel",
    "sidkit.reuseport",
    "sidkit.conntrack",
    "sidkit.flows",
    "sidkit.extract",
    "sidkit.plugin",
    "sidkit.conformance",
    "sidkit.steering",
    "sidkit.hashing",
)


def _corpus_tables() -> None:
    """The corpus page's tables, from the files tests/extract/test_corpus.py reads
    (conformance/captures/manifest.json and verdicts.json), so page and test cannot drift."""
    import json  # noqa: PLC0415

    captures_dir = HERE.parent / "conformance" / "captures"
    manifest = json.loads((captures_dir / "manifest.json").read_text(encoding="utf-8"))
    verdicts = json.loads((captures_dir / "verdicts.json").read_text(encoding="utf-8"))

    def cell(text: object) -> str:
        return " ".join(str(text).split()).replace("|", "\\|").replace("*", "\\*")

    sources = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :width: 100%",
        "   :widths: 14 30 16 40",
        "",
        "   * - source",
        "     - Debian source package (tarball sha256)",
        "     - licence",
        "     - upstream",
    ]
    for name, s in manifest["sources"].items():
        sources += [
            f"   * - ``{name}``",
            f"     - ``{s['package']}`` {s['version']}: ``{s['file']}``"
            f" (``{s['sha256'][:16]}...``)",
            f"     - {s['licence']}",
            f"     - {cell(s['upstream'])}",
        ]
    caps: list[str] = []
    total = 0
    for c in manifest["captures"]:
        total += c["udp_datagrams"]
        opts = [f"``-d {d}``" for d in c["decode_as"]]
        opts += [f"``-o {k}:{v}``" for k, v in c["prefs"].items()]
        caps += [
            f"- **{c['name']}** ({c['protocol'] or 'no protocol named'},"
            f" {c['udp_datagrams']} UDP datagrams): {cell(c['covers'])}."
            + (f" tshark: {', '.join(opts)}." if opts else "")
        ]
    caps += ["", f"{len(manifest['captures'])} captures, {total} UDP datagrams in all."]
    who = {"sidkit": "sidkit wrong (xfail)", "tshark": "tshark wrong", "neither": "neither"}
    table = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :width: 100%",
        "   :widths: 22 22 14 42",
        "",
        "   * - capture, check",
        "     - tshark saw / sidkit said",
        "     - verdict (count)",
        "     - why (and the fix, where sidkit is wrong)",
    ]
    for v in verdicts["verdicts"]:
        why = cell(v["why"]) + (f" **Fix:** {cell(v['fix'])}" if v.get("fix") else "")
        table += [
            f"   * - {v['capture']}, {v['check']}",
            f"     - {cell(v['tshark'])} / {cell(v['sidkit'])}",
            f"     - {who[v['who']]} ({v['count']})",
            f"     - {why}",
        ]
    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    (out / "corpus_sources.rst").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (out / "corpus_captures.rst").write_text("\n".join(caps) + "\n", encoding="utf-8")
    (out / "corpus_verdicts.rst").write_text("\n".join(table) + "\n", encoding="utf-8")


_eras_table()
_eras_by_release()
_vector_counts()
_face_constants()
_corpus_tables()
