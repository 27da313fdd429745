"""``skingen`` in an install without the ``ml`` extra (no torch, diffusers, transformers, peft, …): every
``--help`` works and names the extra, a command that needs it says which to install in one line and exits 2,
and the commands that need no model still run.

The CLI runs in a subprocess whose import system refuses every package the extra brings, as a missing package
does (``ModuleNotFoundError``); the blocked names come from pyproject.toml, not from the code under test.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from skingen.cli import build_parser
from skingen.commands.command import ML_MODULES
from tests.skingen_fixtures import photo

REPO = Path(__file__).resolve().parents[1]
INSTALL = "pip install 'skingen-study[ml]'"
NO_MODEL = {("bundle", "validate"), ("lora", "which")}  # the commands that never load a model


def _ml_extra_modules() -> set[str]:
    """The import names of the ml extra's packages that the core dependencies do not bring."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("-", "_") for r in requirements}

    return names(project["optional-dependencies"]["ml"]) - names(project["dependencies"])


# Runs each argv through skingen.cli.main in one process with the ml extra's packages unimportable; prints a
# JSON list of {rc, out, err} (a traceback, if any, lands in err).
DRIVER = """
import contextlib, io, json, sys, traceback
BLOCKED = set(json.loads(sys.argv[1]))

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from skingen.cli import main

results = []
for argv in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
        except BaseException:
            traceback.print_exc()
            rc = "raised"
    results.append({"rc": rc, "out": out.getvalue(), "err": err.getvalue()})
print(json.dumps(results))
"""


def _without_ml(*argvs: list[str]) -> list[dict[str, object]]:
    blocked = sorted(_ml_extra_modules())
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(blocked), json.dumps(argvs)], capture_output=True, text=True,
        cwd=REPO, timeout=120, env={"PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every runnable command path (``("bundle", "build")``), read from the parser itself."""
    found = []
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for name, sub in action.choices.items():
            found += _commands(sub, (*path, name)) if sub._subparsers else [(*path, name)]
    return found


def test_the_code_knows_every_package_of_the_ml_extra() -> None:
    assert _ml_extra_modules() == ML_MODULES


def test_every_help_works_and_names_the_extra() -> None:
    commands = _commands(build_parser())
    assert ("worker",) in commands and set(commands) >= NO_MODEL and len(commands) == 10
    top, *helps = _without_ml(["--help"], *([*command, "--help"] for command in commands))
    assert top["rc"] == 0 and INSTALL in " ".join(top["out"].split()), top
    for command, result in zip(commands, helps, strict=True):
        assert result["rc"] == 0 and not result["err"], (command, result)
        assert f"usage: skingen {' '.join(command)}" in result["out"]
        names_extra = INSTALL in " ".join(result["out"].split())
        assert names_extra == (command not in NO_MODEL), (command, result["out"])


def test_a_command_that_needs_the_extra_says_which_in_one_line(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    image = tmp_path / "case.png"
    photo(0).save(image)
    (tmp_path / "photos" / "acne").mkdir(parents=True)
    photo(1).save(tmp_path / "photos" / "acne" / "a.png")
    runs = {
        "generate": ["generate", "--prompt", "a rash", "--sd", str(model), "--out", str(tmp_path / "g")],
        "diagnose": ["diagnose", str(image), "--vlm", str(model)],
        "worker": ["worker", "--db", f"sqlite:///{tmp_path}/study.db", "--sd", str(model)],
        "bundle build": ["bundle", "build", str(tmp_path), "--out", str(tmp_path / "b"), "--sd", str(model)],
        "data prepare": ["data", "prepare", str(tmp_path / "photos"), "--format", "folder", "--out",
                         str(tmp_path / "data")],
        "lora train": ["lora", "train", "--data", str(tmp_path), "--sd", str(model), "--out", str(tmp_path / "r")],
    }  # fmt: skip
    for name, result in zip(runs, _without_ml(*runs.values()), strict=True):
        lines = result["err"].splitlines()
        assert result["rc"] == 2 and len(lines) == 1, (name, result)
        assert (
            lines[0].startswith(f"skingen: error: skingen {name} needs the ml extra") and INSTALL in lines[0]
        )
    assert not (tmp_path / "study.db").exists()  # the worker stopped before it touched the database


def test_commands_without_models_run_without_the_extra(tmp_path: Path) -> None:
    image = tmp_path / "case7.png"
    photo(0).save(image)
    (tmp_path / "d.csv").write_text("case_id,condition\ncase7,acne\n")
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "manifest.json").write_text('{"format": "skingen-bundle"}')
    diagnosed, validated = _without_ml(
        ["diagnose", str(image), "--diagnoses", str(tmp_path / "d.csv")],
        ["bundle", "validate", str(tmp_path / "bundle")],
    )
    assert diagnosed["rc"] == 0 and json.loads(diagnosed["out"])["condition"] == "acne", diagnosed
    assert validated["rc"] == 1 and "invalid bundle" in validated["err"], validated
