"""`serve --demo` from a non-editable install: a wheel of this checkout in a fresh virtual environment.

The demo used to find its protocol beside the source tree and draw its bundle there, which breaks once the
package lives in site-packages. Here the wheel is installed without dependencies into a new venv that sees
the test environment's site-packages through a ``.pth`` file (``.pth`` files inside that added folder are not
processed, so this checkout's editable install stays out), and the demo is served from an unrelated folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from bench.servers import free_port, stop, wait_until_healthy

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
# Generous: a loaded 2-core machine draws the demo bundle and starts Streamlit in well under a minute.
START_TIMEOUT = 240


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with this checkout's wheel installed (not editable); returns its bin folder."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to copy the sources from")
    root = tmp_path_factory.mktemp("installed")
    # Build from a copy, so the build leaves no build/ or *.egg-info behind in the checkout.
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    source = root / "source"
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", root / "dist", source], check=True
    )
    [wheel] = (root / "dist").glob("skingen_study-*.whl")

    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", env_dir], check=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([*pip, "--python", python, "install", "--no-deps", wheel], check=True)

    where = subprocess.run(
        [python, "-c", "import study, skingen; print(study.__file__); print(skingen.__file__)"],
        capture_output=True, text=True, check=True, cwd=root, env=_clean_env(root),
    ).stdout.split()  # fmt: skip
    assert all(Path(path).is_relative_to(purelib) for path in where), where
    return env_dir / "bin"


def _clean_env(root: Path) -> dict[str, str]:
    """No PYTHONPATH, and a home and XDG folders of the test's own."""
    home = root / "home"
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "XDG_", "SKINGEN"))
    }
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
    )
    return env


def _serve_demo(bin_dir: Path, cwd: Path, *extra: str) -> str:
    """Run `skingen-study serve --demo` until the app answers its health check; returns the server's log."""
    port = free_port()
    log_path = cwd / f"serve-{port}.log"
    command = [bin_dir / "skingen-study", "serve", "--demo", "--db", f"sqlite:///{cwd}/demo-{port}.db"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port), *extra],
            cwd=cwd, env=_clean_env(cwd.parent), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process, log_path, timeout=START_TIMEOUT)
    finally:
        stop(process)
    return log_path.read_text()


def test_serve_demo_from_a_wheel_draws_into_the_demo_dir(venv: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    demo = tmp_path / "my-demo"
    log = _serve_demo(venv, cwd, "--demo-dir", str(demo))
    assert f"drawing the demo bundle into {demo / 'demo-bundle'}" in log
    assert (demo / "demo-bundle" / "manifest.json").is_file() and (demo / "between.yaml").is_file()
    assert not list(venv.parent.rglob("manifest.json")), "nothing may be drawn into the installed package"
    assert not (tmp_path / "home" / "data").exists()


def test_serve_demo_from_a_wheel_defaults_to_the_user_data_dir(venv: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    _serve_demo(venv, cwd)
    default = tmp_path / "home" / "data" / "skingen-study" / "demo"
    assert (default / "demo-bundle" / "manifest.json").is_file() and (default / "between.yaml").is_file()
    assert not list(venv.parent.rglob("manifest.json"))
