# Mutation testing for sidkit's families: put one small bug into the code at a time and see
# whether the family's focused tests notice.
# Strategy: a stdlib-only driver (ast + subprocess + tomllib) rather than mutmut or
# cosmic-ray. Both were tried against this layout: mutmut 3 first runs the whole configured
# test directory to collect per-function coverage (the full suite here needs the live kernel and
# takes a quarter of an hour) and has one test selection per configuration, while each family
# here must run only its own focused tests; cosmic-ray rewrites the source files in place,
# which a working tree shared by several engineers cannot allow. This driver never touches the
# working tree: it copies src/ and plugins/ into a temporary directory, writes each mutant
# there, and runs the family's tests in a fresh interpreter whose PYTHONPATH puts the copy first
# (the editable install's finder sits after the path finder, so the copy wins; entry-point
# plugins import by name and follow). Hypothesis keeps its example database in the temporary
# directory too, so mutants never seed failures into the shared one.
# Mutants are made by splicing source text at AST node positions, so everything but the mutated
# expression keeps its formatting, and each mutant has an id built from the file, the enclosing
# function, the operator and the mutated text (not the line number), so the list of known
# equivalent mutants survives unrelated edits.
"""Run sidkit's mutation families (conformance/mutation/families.toml) and report scores."""

from __future__ import annotations

import argparse
import ast
import datetime
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FAMILIES = HERE / "families.toml"
EQUIVALENTS = HERE / "equivalent.toml"

_BINOP_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Add,
    ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitOr,
}
_CMP_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_DELETABLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Raise)


@dataclass(frozen=True)
class Mutant:
    """One small change to one file: replace bytes [start, end) by *text*."""

    path: str  # relative to the repository root
    qualname: str
    op: str
    snippet: str
    occurrence: int
    line: int
    start: int
    end: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.path}::{self.qualname}::{self.op}::{self.snippet}#{self.occurrence}"


@dataclass
class Family:
    name: str
    files: list[str]
    tests: list[str]
    functions: list[str] = field(default_factory=list)
    pytest_args: list[str] = field(default_factory=list)
    sample: int = 0
    ci_sample: int = 0


def _line_offsets(src: bytes) -> list[int]:
    offsets = [0]
    for line in src.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def _compact(text: str, limit: int = 70) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 3] + "..."


_TYPING_NAMES = {"Literal", "Union", "Optional", "Callable", "Annotated", "TypeAlias"}


def _is_type_alias(value: ast.expr) -> bool:
    """A module-level ``X = Literal[...]`` or ``X = A | B[...] | None`` type alias."""
    if isinstance(value, ast.Subscript):
        return isinstance(value.value, ast.Name) and value.value.id in _TYPING_NAMES
    if isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitOr):
        # Type names are CamelCase; ALL_CAPS names or-ed together are flag constants.
        return all(
            (isinstance(v, ast.Name) and not v.id.isupper())
            or isinstance(v, ast.Subscript)
            or (isinstance(v, ast.Constant) and v.value is None)
            or _is_type_alias(v)
            for v in (value.left, value.right)
        )
    return False


class _Collector(ast.NodeVisitor):
    """Walk one module and list (node, op, replacement text) in a stable order."""

    def __init__(self, src: bytes) -> None:
        self.src = src
        self.offsets = _line_offsets(src)
        self.scope: list[str] = []
        self.found: list[tuple[str, str, int, int, int, str]] = []

    # -- helpers ---------------------------------------------------------------------------
    def _span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offsets[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end = self.offsets[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        return start, end

    def _add(self, node: ast.AST, op: str, text: str) -> None:
        start, end = self._span(node)
        original = self.src[start:end].decode()
        if text == original:
            return
        qual = ".".join(self.scope) or "<module>"
        self.found.append((qual, op, node.lineno, start, end, text))  # type: ignore[attr-defined]

    def _replace_expr(self, node: ast.expr, new: ast.expr, op: str) -> None:
        self._add(node, op, "(" + ast.unparse(new) + ")")

    # -- scopes and what is never mutated --------------------------------------------------
    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        # Arguments' defaults are mutated; annotations and decorators are not.
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        self._body(node.body)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_function(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scope.append(node.name)
        self._body(node.body)
        self.scope.pop()

    def visit_Module(self, node: ast.Module) -> None:
        self._body(node.body)

    def _body(self, body: list[ast.stmt]) -> None:
        for i, stmt in enumerate(body):
            if (
                i == 0
                and isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                continue  # docstring
            self.visit(stmt)

    def visit_Import(self, node: ast.Import) -> None:
        return

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return  # messages

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            return
        if not isinstance(test, ast.Compare | ast.BoolOp | ast.UnaryOp):
            self._replace_expr(test, ast.UnaryOp(ast.Not(), test), "negate-condition")
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._delete(node)
        if node.value is not None:
            self.visit(node.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return
        if not self.scope and _is_type_alias(node.value):
            return  # Var = Literal[...], Op = A | B: read only by the type checker
        self._delete(node)
        self.visit(node.value)
        for t in node.targets:
            self.visit(t)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._delete(node)
        swap = _BINOP_SWAP.get(type(node.op))
        if swap is not None:
            new = ast.AugAssign(node.target, swap(), node.value)
            self._add(
                node, f"augassign {type(node.op).__name__}->{swap.__name__}", ast.unparse(new)
            )
        self._add(
            node, "augassign->assign", f"{ast.unparse(node.target)} = {ast.unparse(node.value)}"
        )
        self.visit(node.value)

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant):
            return  # a bare string (comment-like) or Ellipsis
        self._delete(node)
        self.visit(node.value)

    def visit_Raise(self, node: ast.Raise) -> None:
        self._delete(node)  # the message and the exception's arguments are not mutated

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        if value is not None and not (isinstance(value, ast.Constant) and value.value is None):
            self._add(node, "return-None", "return None")
            self.visit(value)

    def visit_Break(self, node: ast.Break) -> None:
        self._add(node, "break->continue", "continue")

    def visit_Continue(self, node: ast.Continue) -> None:
        self._add(node, "continue->break", "break")

    def _delete(self, node: ast.stmt) -> None:
        self._add(node, "delete-statement", "pass")

    # -- expressions -----------------------------------------------------------------------
    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = _BINOP_SWAP.get(type(node.op))
        if swap is not None:
            new = ast.BinOp(node.left, swap(), node.right)
            self._replace_expr(node, new, f"binop {type(node.op).__name__}->{swap.__name__}")
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        for i, cmpop in enumerate(node.ops):
            swap = _CMP_SWAP.get(type(cmpop))
            if swap is not None:
                ops = list(node.ops)
                ops[i] = swap()
                new = ast.Compare(node.left, ops, node.comparators)
                self._replace_expr(node, new, f"compare {type(cmpop).__name__}->{swap.__name__}")
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other: ast.boolop = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        name = "and->or" if isinstance(node.op, ast.And) else "or->and"
        self._replace_expr(node, ast.BoolOp(other, node.values), name)
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not | ast.USub | ast.Invert):
            self._replace_expr(node, node.operand, f"drop-{type(node.op).__name__}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        v = node.value
        if isinstance(v, bool):
            self._replace_expr(node, ast.Constant(not v), "flip-bool")
        elif isinstance(v, int):
            self._add(node, "int+1", repr(v + 1) if v >= 0 else f"({v + 1})")
            if v >= 1:
                self._add(node, "int-1", repr(v - 1))

    def visit_Subscript(self, node: ast.Subscript) -> None:
        # Type subscripts (cast targets, generics) are not behaviour.
        if isinstance(node.value, ast.Name) and node.value.id in {
            "list",
            "dict",
            "tuple",
            "set",
            "frozenset",
            "type",
            "Callable",
            "Sequence",
            "Mapping",
            "Iterator",
            "Iterable",
            "Literal",
            "Final",
            "ClassVar",
        }:
            return
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name) and func.id in {"cast", "TypeVar", "NewType"}:
            return
        self.generic_visit(node)


def mutants_of(rel: str, root: Path = ROOT) -> list[Mutant]:
    """Every mutant of one file (*rel* under *root*), in a stable order, each with its id."""
    src = (root / rel).read_bytes()
    collector = _Collector(src)
    collector.visit(ast.parse(src, filename=rel))
    seen: dict[tuple[str, str, str], int] = {}
    out = []
    for qual, op, line, start, end, text in collector.found:
        snippet = _compact(src[start:end].decode())
        key = (qual, op, snippet)
        seen[key] = seen.get(key, 0) + 1
        out.append(Mutant(rel, qual, op, snippet, seen[key], line, start, end, text))
    return out


def apply(src: bytes, m: Mutant) -> bytes:
    return src[: m.start] + m.text.encode() + src[m.end :]


# -- configuration ------------------------------------------------------------------------


def load_families(path: Path = FAMILIES) -> dict[str, Family]:
    data = tomllib.loads(path.read_text())
    return {name: Family(name=name, **spec) for name, spec in data["families"].items()}


def load_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """Known equivalent mutants (id -> why no test can tell them apart from the original)."""
    data = tomllib.loads(path.read_text())
    out: dict[str, str] = {}
    for entry in data.get("equivalent", []):
        if not entry.get("reason", "").strip():
            raise SystemExit(f"equivalent mutant without a reason: {entry.get('id')}")
        out[entry["id"]] = entry["reason"]
    return out


def family_mutants(fam: Family, root: Path = ROOT) -> list[Mutant]:
    """The family's mutants, read from *root* (the workspace snapshot while running)."""
    out = []
    for f in fam.files:
        for m in mutants_of(f, root):
            top = m.qualname.split(".")[0] if m.qualname != "<module>" else "<module>"
            if fam.functions and not any(
                fnmatchcase(m.qualname, pat) or fnmatchcase(top, pat) for pat in fam.functions
            ):
                continue
            out.append(m)
    return out


# -- running ------------------------------------------------------------------------------


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed, survived, timeout
    seconds: float


class Workspace:
    """A private copy of src/ and plugins/ that mutants are written into."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sidkit-mutation-"))
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        for top in ("src", "plugins"):
            shutil.copytree(ROOT / top, self.dir / top, ignore=ignore)
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join([str(self.dir / "src"), str(self.dir / "plugins")])
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(self.dir / ".hypothesis")
        # tests/conftest.py picks Hypothesis's "ci" profile (300 examples) when CI is set;
        # mutants run under the "dev" profile (100) so a sampled run stays within minutes.
        self.env.pop("CI", None)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def target(self, rel: str) -> Path:
        return self.dir / rel

    def pytest(self, fam: Family, timeout: float) -> tuple[str, float, str]:
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "--no-header",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore",
            *fam.pytest_args,
            *(str(ROOT / t) for t in fam.tests),
        ]
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                cmd,
                cwd=self.dir,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return "timeout", time.monotonic() - t0, ""
        status = "survived" if proc.returncode == 0 else "killed"
        if proc.returncode not in (0, 1):
            status = "error" if proc.returncode != 2 else "killed"  # 2: collection error
        return status, time.monotonic() - t0, proc.stdout[-3000:] + proc.stderr[-2000:]


def run_family(
    fam: Family,
    ws: Workspace,
    mutants: list[Mutant],
    deadline: float,
    verbose: bool,
) -> tuple[list[Outcome], float]:
    status, base, out = ws.pytest(fam, timeout=1800)
    if status != "survived":
        raise SystemExit(f"[{fam.name}] the unmutated tests fail; fix them first:\n{out}")
    timeout = max(30.0, 4 * base)
    print(
        f"[{fam.name}] tests pass unmutated in {base:.1f} s; timeout per mutant {timeout:.0f} s",
        flush=True,
    )
    outcomes = []
    originals: dict[str, bytes] = {}
    for i, m in enumerate(mutants, 1):
        if time.monotonic() > deadline:
            print(f"[{fam.name}] time budget spent after {i - 1} of {len(mutants)} mutants")
            break
        target = ws.target(m.path)
        src = originals.setdefault(m.path, target.read_bytes())
        target.write_bytes(apply(src, m))
        try:
            status, secs, out = ws.pytest(fam, timeout)
        finally:
            target.write_bytes(src)
        if status == "error":
            raise SystemExit(f"[{fam.name}] pytest could not run for {m.id}:\n{out}")
        outcomes.append(Outcome(m, status, secs))
        mark = {"killed": ".", "timeout": "T", "survived": "S"}[status]
        if verbose or status == "survived":
            print(
                f"  {mark} {m.id}  (line {m.line}: -> {_compact(m.text)})  {secs:.1f}s", flush=True
            )
        elif i % 10 == 0:
            print(f"  ... {i} of {len(mutants)}", flush=True)
    return outcomes, base


def default_seed() -> str:
    """A seed that varies between CI runs: the CI run id if there is one, else today's date."""
    for var in ("SIDKIT_MUTATION_SEED", "GITHUB_RUN_ID", "CI_PIPELINE_ID", "BUILD_ID"):
        if os.environ.get(var):
            return os.environ[var]
    return datetime.datetime.now(datetime.UTC).date().isoformat()


def _select(
    fam: Family, equivalents: dict[str, str], sample: int | None, seed: str, root: Path
) -> tuple[list[Mutant], int, int]:
    every = family_mutants(fam, root)
    known = [m for m in every if m.id in equivalents]
    candidates = [m for m in every if m.id not in equivalents]
    n = len(candidates) if sample is None or sample <= 0 else min(sample, len(candidates))
    chosen = random.Random(f"{seed}/{fam.name}").sample(candidates, n)
    chosen.sort(key=lambda m: (m.path, m.start, m.op))
    return chosen, len(every), len(known)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("families", nargs="*", help="families to run (default: all)")
    p.add_argument("--sample", type=int, default=None, help="mutants per family (0 = all)")
    p.add_argument("--ci", action="store_true", help="use each family's small ci_sample")
    p.add_argument("--seed", default=None, help="sampling seed (default: CI run id or date)")
    p.add_argument("--min-score", type=float, default=None, help="fail below this score")
    p.add_argument("--budget", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--ids", type=Path, default=None, help="run exactly the mutant ids in this file")
    p.add_argument(
        "--pytest-arg",
        action="append",
        default=[],
        help="extra pytest argument for every run (e.g. --deselect NODEID of a test that "
        "fails for reasons unrelated to the family)",
    )
    p.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    p.add_argument("--verbose", "-v", action="store_true", help="print every mutant")
    args = p.parse_args(argv)

    families = load_families()
    equivalents = load_equivalents()
    unknown = set(args.families) - set(families)
    if unknown:
        p.error(f"unknown families: {sorted(unknown)} (known: {sorted(families)})")
    names = args.families or list(families)
    seed = args.seed or default_seed()
    all_ids = {m.id for name in families for m in family_mutants(families[name])}
    stale = sorted(set(equivalents) - all_ids)
    if stale:
        # A warning, not a failure: the code moves under the list; the entry is then dead.
        print("warning: equivalent.toml lists mutants that no longer exist (remove them):")
        for s in stale:
            print(f"  {s}")

    # Mutants are computed from the snapshot they are written into: the working tree may
    # change under a long run (other people edit it), the snapshot does not.
    ws = None if args.list else Workspace()
    root = ws.dir if ws else ROOT
    plan = []
    for name in names:
        fam = families[name]
        fam.pytest_args = [*fam.pytest_args, *args.pytest_arg]
        size = (
            fam.ci_sample if args.ci else (args.sample if args.sample is not None else fam.sample)
        )
        chosen, total, known = _select(fam, equivalents, size, seed, root)
        if args.ids is not None:
            wanted = {line.strip() for line in args.ids.read_text().splitlines()}
            chosen = [m for m in family_mutants(fam, root) if m.id in wanted]
            if not chosen:
                continue
        plan.append((fam, chosen, total, known))
    if ws is None:
        for fam, chosen, total, known in plan:
            print(f"[{fam.name}] {len(chosen)} of {total} mutants ({known} known equivalent)")
            for m in chosen:
                print(f"  {m.id}  line {m.line} -> {_compact(m.text)}")
        return 0

    if args.ci:
        # With a time budget the last families may not be reached: vary which they are.
        random.Random(seed).shuffle(plan)
    print(f"seed {seed!r}")
    deadline = time.monotonic() + (args.budget if args.budget else 1e9)
    rows = []
    try:
        for fam, chosen, total, known in plan:
            if time.monotonic() > deadline:
                print(f"[{fam.name}] skipped: the time budget is spent")
                continue
            outcomes, _ = run_family(fam, ws, chosen, deadline, args.verbose)
            killed = sum(o.status in ("killed", "timeout") for o in outcomes)
            rows.append((fam.name, killed, len(outcomes), total, known))
    finally:
        ws.close()
    print()
    print(f"{'family':<12} {'killed/run':>11} {'score':>7} {'mutants':>8} {'equivalent':>11}")
    for name, killed, run, total, known in rows:
        score = killed / run if run else 1.0
        print(f"{name:<12} {killed:>5}/{run:<5} {score:>7.1%} {total:>8} {known:>11}")
    k_all = sum(r[1] for r in rows)
    n_all = sum(r[2] for r in rows)
    overall = k_all / n_all if n_all else 1.0
    print(f"{'all':<12} {k_all:>5}/{n_all:<5} {overall:>7.1%}")
    if args.min_score is not None and overall < args.min_score:
        print(f"mutation score {overall:.1%} is below {args.min_score:.0%}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
