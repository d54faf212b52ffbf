"""`make mutation`: mutation testing (cosmic-ray) of the modules the product's promises rest on.

Each module is mutated one change at a time and its tests are run against every mutant; a mutant that no test
notices (it "survives") is a behaviour the suite does not pin down. Not part of CI: a module takes minutes.

    python -m hack.mutation                   # every module below
    python -m hack.mutation clock protocol    # some of them

Sessions and configs go to build/mutation/ (gitignored); a rerun starts afresh. The tests per module are the
in-process ones that exercise it (a mutant must fail them within `timeout` seconds). A survivor that changes
nothing observable is listed, with the reason, in hack/mutation-equivalents.toml: the score is killed /
(mutants - equivalent), and a listed mutant that no longer survives is reported as stale.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "build" / "mutation"
# The leftovers check is off: another process on the machine opening a port during one of the hundreds of
# runs would fail that run, and count as a kill.
PYTEST = f"env DRISHTI_CHECK_LEFTOVERS=0 {sys.executable} -m pytest -x -q -p no:cacheprovider"
EQUIVALENTS = REPO / "hack" / "mutation-equivalents.toml"
COSMIC_RAY = str(Path(sys.executable).parent / "cosmic-ray")  # the venv's, installed by the `dev` extra

# module name -> (source file, the tests that pin it down)
MODULES: dict[str, tuple[str, list[str]]] = {
    "clock": ("service/drishti_stream/clock.py",
              ["tests/unit/test_clock.py", "tests/unit/test_camera.py", "tests/unit/test_camera_run.py"]),
    "protocol": ("service/drishti_stream/protocol.py", ["tests/unit/test_protocol.py"]),
    "settings": ("service/drishti_stream/settings.py",
                 ["tests/unit/test_settings.py", "tests/unit/test_settings_ranges.py"]),
    "camera": ("service/drishti_stream/camera.py",
               ["tests/unit/test_camera.py", "tests/unit/test_camera_frames.py",
                "tests/unit/test_camera_run.py"]),
    "broadcast": ("service/drishti_stream/broadcast.py",
                  ["tests/unit/test_client_rate.py", "tests/unit/test_broadcast.py"]),
    "render": ("operator/drishti_operator/render.py", ["tests/unit/test_operator_render.py"]),
    "status": ("operator/drishti_operator/status.py", ["tests/unit/test_operator_status.py"]),
    "crd": ("operator/drishti_operator/crd.py", ["tests/unit/test_operator_crd.py"]),
}


def config(name: str) -> Path:
    source, tests = MODULES[name]
    path = WORK / f"{name}.toml"
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(source)}\n"
        "timeout = 60.0\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(PYTEST + ' ' + ' '.join(tests))}\n\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n')
    return path


@dataclass(frozen=True)
class Survivor:
    path: str
    line: int
    column: int
    operator: str
    occurrence: int

    def source(self) -> str:
        """The unmutated source line the mutant changed."""
        return (REPO / self.path).read_text().splitlines()[self.line - 1].strip()

    def in_unevaluated_annotation(self) -> bool:
        """A `|` of a function's annotation (`int | None` made `int + None`) in a module with postponed
        annotations (PEP 563): nothing ever evaluates it, so the mutant is equivalent by construction."""
        if not self.operator.startswith("core/ReplaceBinaryOperator_BitOr_"):
            return False
        return any(start <= (self.line, self.column) < end for start, end in _annotations(self.path))

    def __str__(self) -> str:
        return f"{self.path}:{self.line} {self.operator} #{self.occurrence}"


@cache
def _annotations(path: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the function annotations of a module with `from __future__ import annotations` lie."""
    tree = ast.parse((REPO / path).read_text())
    postponed = any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
                    and any(alias.name == "annotations" for alias in node.names) for node in tree.body)
    spans = []
    for node in ast.walk(tree) if postponed else ():
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            for annotation in [*(p.annotation for p in params if p is not None), node.returns]:
                if annotation is not None and annotation.end_lineno is not None \
                        and annotation.end_col_offset is not None:
                    spans.append(((annotation.lineno, annotation.col_offset),
                                  (annotation.end_lineno, annotation.end_col_offset)))
    return spans


def equivalents(name: str) -> list[dict[str, str]]:
    """The module's listed equivalent mutants (EQUIVALENTS): each with an operator glob, a piece of the source
    line it changes and why the change is not observable."""
    return [entry for entry in tomllib.loads(EQUIVALENTS.read_text()).get("equivalent", [])
            if entry["module"] == name]


def is_listed(survivor: Survivor, entry: Mapping[str, str]) -> bool:
    return fnmatch.fnmatchcase(survivor.operator, entry["operator"]) and entry["line"] in survivor.source()


def mutate(name: str) -> tuple[int, list[Survivor]]:
    """Runs every mutant of one module; returns the number of mutants and the survivors."""
    session = WORK / f"{name}.sqlite"
    session.unlink(missing_ok=True)
    cfg = config(name)
    subprocess.run([COSMIC_RAY, "init", str(cfg), str(session)], cwd=REPO, check=True)
    subprocess.run([COSMIC_RAY, "exec", str(cfg), str(session)], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dump = subprocess.run([COSMIC_RAY, "dump", str(session)], cwd=REPO, check=True, capture_output=True,
                          text=True).stdout
    total, survivors = 0, []
    for line in dump.splitlines():
        job, result = json.loads(line)
        total += 1
        if result and result.get("test_outcome") == "survived":
            mutation = job["mutations"][0]
            survivors.append(Survivor(mutation["module_path"], *mutation["start_pos"],
                                      mutation["operator_name"], mutation["occurrence"]))
    return total, survivors


def report(name: str, total: int, survivors: list[Survivor]) -> str:
    """Prints the survivors not listed as equivalent and the listed ones that no longer survive; returns the
    module's row: score = killed / (mutants - equivalent)."""
    listed = equivalents(name)
    equivalent = [s for s in survivors
                  if s.in_unevaluated_annotation() or any(is_listed(s, entry) for entry in listed)]
    for survivor in survivors:
        if survivor not in equivalent:
            print(f"survived: {survivor}: {survivor.source()}", flush=True)
    for entry in listed:
        if not any(is_listed(s, entry) for s in survivors):
            print(f"stale equivalent ({name}): {entry['operator']} on {entry['line']!r}", flush=True)
    killed, left = total - len(survivors), len(survivors) - len(equivalent)
    score = 100 * killed / max(total - len(equivalent), 1)
    return f"| {name} | {total} | {killed} | {len(equivalent)} | {left} | {score:.1f}% |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.mutation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"default: all of {', '.join(MODULES)}")
    names = parser.parse_args(argv).modules or list(MODULES)
    unknown = sorted(set(names) - set(MODULES))
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    WORK.mkdir(parents=True, exist_ok=True)
    header = "| module | mutants | killed | equivalent | survived | score |\n|---|---|---|---|---|---|"
    rows = []
    for name in names:
        started = time.monotonic()
        rows.append(report(name, *mutate(name)))
        print(f"{rows[-1]}  ({time.monotonic() - started:.0f} s)", flush=True)
    print(f"\n{header}\n" + "\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
