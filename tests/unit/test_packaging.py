"""The files that install and ship the project, checked as a newcomer would meet them:
`make clean` leaves nothing behind, `make serve` installs the runtime only (with a line saying
so), `make demo` adds just the SDKs, and the image runs as an unprivileged user that owns its
data directory. (No Docker engine here: the Dockerfile is checked by reading it.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def copy_of_the_build_files(tmp: Path) -> Path:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp / name)
    return tmp


def make(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(tmp), *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_make_clean_removes_every_artefact(tmp_path: Path) -> None:
    root = copy_of_the_build_files(tmp_path)
    made = [".venv/bin", "var", ".pytest_cache", ".mypy_cache", ".ruff_cache",
            ".import_linter_cache", "ainfera_ledger.egg-info", "build", "dist",
            "app/__pycache__", "tests/unit/__pycache__"]
    for folder in made:
        (root / folder).mkdir(parents=True)
        (root / folder / "x").write_text("x")
    (root / "app" / "keep.py").write_text("")
    assert make(root, "clean").returncode == 0
    assert [f for f in made if (root / f).exists()] == []
    assert (root / "app" / "keep.py").exists()


def test_serve_installs_the_runtime_only_and_says_so(tmp_path: Path) -> None:
    root = copy_of_the_build_files(tmp_path)
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").write_text("")  # the venv exists; plan the rest
    serve = make(root, "-n", "serve").stdout
    assert "pip install --quiet -e ." in serve
    assert "[dev]" not in serve
    assert "[demo]" not in serve
    assert "echo \"==> installing the gateway's runtime dependencies" in serve
    demo = make(root, "-n", "demo").stdout
    assert "-e '.[demo]'" in demo
    assert "[dev]" not in demo
    assert "ainfera demo" in demo
    test = make(root, "-n", "test").stdout
    assert "-e '.[dev]'" in test


def test_the_image_runs_unprivileged_with_a_data_directory_it_owns() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "the image must name its user"
    user = users[-1]
    assert user not in ("root", "0", "nobody")
    text = "\n".join(lines)
    assert f"-o {user} -g {user}" in text  # the data directory belongs to that user
    assert "AINFERA_DATABASE_URL=sqlite:////var/lib/ainfera/" in text
    assert "AINFERA_SIGNING_KEY_FILE=/var/lib/ainfera/" in text
    assert 'VOLUME ["/var/lib/ainfera"]' in text
    for package in ("app", "domain", "projections", "adapters", "migrations", "upstream_sim"):
        assert f"COPY {package} ./{package}" in text
