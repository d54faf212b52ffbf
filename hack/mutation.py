"""`make mutation`: mutation testing (cosmic-ray) of the modules the product's promises rest on.

Each module is mutated one change at a time and its tests are run against every mutant; a mutant that no test
notices (it "survives") is a behaviour the suite does not pin down. Not part of CI: a module takes minutes.

    python -m hack.mutation                   # every module below
    python -m hack.mutation clock protocol    # some of them

Sessions and configs go to build/mutation/ (gitignored); a rerun starts afresh. The tests per module are the
in-process ones that exercise it (a mutant must fail them within `timeout` seconds).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "build" / "mutation"
PYTEST = f"{sys.executable} -m pytest -x -q -p no:cacheprovider"
COSMIC_RAY = str(Path(sys.executable).parent / "cosmic-ray")  # the venv's, installed by the `dev` extra

# module name -> (source file, the tests that pin it down)
MODULES: dict[str, tuple[str, list[str]]] = {
    "clock": ("service/drishti_stream/clock.py",
              ["tests/unit/test_clock.py", "tests/unit/test_camera.py", "tests/unit/test_camera_run.py"]),
    "protocol": ("service/drishti_stream/protocol.py", ["tests/unit/test_protocol.py"]),
    "settings": ("service/drishti_stream/settings.py", ["tests/unit/test_settings.py"]),
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


def mutate(name: str) -> tuple[int, list[str]]:
    """Runs every mutant of one module; returns the number of mutants and a line per survivor."""
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
            survivors.append(f"{mutation['module_path']}:{mutation['start_pos'][0]} "
                             f"{mutation['operator_name']} #{mutation['occurrence']}")
    return total, survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.mutation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"default: all of {', '.join(MODULES)}")
    names = parser.parse_args(argv).modules or list(MODULES)
    unknown = sorted(set(names) - set(MODULES))
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    WORK.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        total, survivors = mutate(name)
        killed = total - len(survivors)
        rows.append(f"| {name} | {total} | {killed} | {len(survivors)} | "
                    f"{100 * killed / max(total, 1):.1f}% |")
        for survivor in survivors:
            print(f"survived: {survivor}", flush=True)
    print("\n| module | mutants | killed | survived | score |\n|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
