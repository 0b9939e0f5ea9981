"""The console ships inside the package with no build step and loads nothing from elsewhere:
every file under app/http/console/ is covered by pyproject's package-data, and no file names
another origin (no CDN, no web font, no analytics)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "app" / "http" / "console"


def console_files() -> list[Path]:
    return sorted(p for p in CONSOLE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def test_every_console_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["app.http"]
    files = console_files()
    assert len(files) >= 10
    missing = [str(p.relative_to(ROOT)) for p in files
               if not any(fnmatch.fnmatch(str(p.relative_to(CONSOLE.parent)), pat)
                          for pat in patterns)]
    assert not missing, f"not in package-data: {missing}"


def test_nothing_is_loaded_from_another_origin() -> None:
    remote = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//"""
                        r"""|import\s*\(?\s*["'](?:https?:)?//"""
                        r"""|url\(\s*["']?(?:https?:)?//""")
    offenders = [str(p.relative_to(ROOT)) for p in console_files()
                 if p.suffix in {".html", ".css", ".js"} and remote.search(p.read_text())]
    assert not offenders


def test_every_module_the_page_imports_exists() -> None:
    imports = re.compile(r"""from\s+["'](\.{1,2}/[^"']+)["']""")
    for path in (CONSOLE / "js").rglob("*.js"):
        for target in imports.findall(path.read_text()):
            assert (path.parent / target).resolve().is_file(), f"{path.name} imports {target}"
