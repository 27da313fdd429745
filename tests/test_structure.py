"""Checks of the code's structure that a new maintainer relies on: one meaning per name, one-way layers."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("formats", "db", "study", "skingen", "analysis", "app")


def _modules() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def test_no_two_modules_define_a_public_class_of_the_same_name() -> None:
    """``Condition`` once meant an experimental arm in one module and a disease in another; ``Rating`` an ORM
    row and a protocol section. A class name names one thing across the codebase."""
    defined: dict[str, list[str]] = defaultdict(list)
    for path in _modules():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                defined[node.name].append(str(path.relative_to(ROOT)))
    assert {name: where for name, where in defined.items() if len(where) > 1} == {}


def test_no_module_is_named_for_a_file_format_it_does_not_hold() -> None:
    """A CSV diagnoser lived in ``skingen/diagnosis/manifest.py``: 'manifest' is the bundle format's file, held
    by ``formats/bundle.py`` alone; no other module takes the name."""
    manifests = [str(p.relative_to(ROOT)) for p in _modules() if p.stem == "manifest"]
    assert manifests == []
    assert "MANIFEST_NAME" in (ROOT / "formats" / "bundle.py").read_text(encoding="utf-8")


def test_the_layers_hold() -> None:
    """import-linter's contracts in pyproject.toml: formats → db → study | skingen | analysis → app, no ML stack
    outside skingen — with no exception: an ``ignore_imports`` would hide a cycle the layers exist to forbid."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    assert [c["name"] for c in config["contracts"] if c.get("ignore_imports")] == []
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("lint-imports is missing: install the `test` extra (import-linter)")
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _test_modules_imported(source: str) -> list[str]:
    """The ``tests/test_*.py`` modules ``source`` imports, however spelled (``import tests.test_x``,
    ``from tests.test_x import …``, ``from tests import test_x``, ``from .test_x import …``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("tests.test_")]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.startswith("test_") or module.startswith("tests.test_"):
                found.append(module)
            elif module == "tests" or (node.level and not module):
                found += [alias.name for alias in node.names if alias.name.startswith("test_")]
    return found


@pytest.mark.parametrize(
    "source",
    [
        "import tests.test_browser",
        "from tests.test_evaluation import write_sets",
        "from tests import conftest, test_browser",
        "from .test_lora_training import SMALL",
        "def f():\n    from tests.test_browser import CHROMIUM",
    ],
)
def test_the_import_scan_finds_each_spelling(source: str) -> None:
    assert _test_modules_imported(source) != []
    assert _test_modules_imported("from tests.browser import Participant\nfrom tests import factories") == []


def test_no_test_module_is_imported() -> None:
    """A helper imported from a test module runs that module's top level (its skips, its fixtures re-bound as
    names) and hides what is shared: shared helpers live in modules named for what they hold (tests/browser.py,
    tests/lora_data.py, tests/image_sets.py, tests/shares.py) or in tests/conftest.py, and neither a test
    module nor a helper imports a test module."""
    imports = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if (found := _test_modules_imported(path.read_text(encoding="utf-8")))
    }
    assert imports == {}
