"""The browser tier: Debian's Chromium, headless, driven by Python playwright against a real
`ainfera serve` process (SQLite store, the loopback fake upstream), with calls made through the
official SDKs.

Skipped, saying so, only when no Chromium can be found; with AINFERA_TEST_REQUIRE_BROWSER=1
(.ci/run sets it, after installing Debian's `chromium`) a missing browser fails the run.
Screenshots are kept in an artifact directory the run prints (AINFERA_ARTIFACTS_DIR, else a
temporary one); with AINFERA_UPDATE_DOC_SCREENSHOTS=1 they also replace docs/console/*.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream, start_fake_upstream, text
from tests.harness.gateway import AINFERA, Server, prepare_world, serve

REPO = Path(__file__).resolve().parents[2]
DOC_SHOTS = REPO / "docs" / "console"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking",
               "--disable-dev-shm-usage"]
# Generous: the machine running this may be a loaded 2-core box.
TIMEOUT_MS = 30_000


def find_chromium() -> str | None:
    explicit = os.environ.get("AINFERA_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        message = ("no Chromium found (install Debian's `chromium`, or set AINFERA_CHROMIUM "
                   "to a Chromium binary)")
        if os.environ.get("AINFERA_TEST_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser tier is required (AINFERA_TEST_REQUIRE_BROWSER=1) but "
                        f"{message}")
        pytest.skip(f"browser tier not run: {message}")
    return path


_ARTIFACTS: list[Path] = []


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("AINFERA_ARTIFACTS_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("console-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    _ARTIFACTS.append(path)
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Says where the screenshots and receipts of this run are, whatever the outcome."""
    for path in _ARTIFACTS:
        shots = sorted(p.name for p in path.glob("*.png"))
        terminalreporter.write_line(
            f"console artifacts ({len(shots)} screenshots, receipts): {path}")


@dataclass
class Shots:
    """Screenshots of the pages, named for docs/console.md."""

    directory: Path
    taken: list[Path] = field(default_factory=list)

    def take(self, page: Any, name: str) -> Path:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        if os.environ.get("AINFERA_UPDATE_DOC_SCREENSHOTS") == "1":
            DOC_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOC_SHOTS / path.name)
        return path


@pytest.fixture(scope="session")
def shots(artifacts: Path) -> Shots:
    return Shots(artifacts)


@dataclass
class Console:
    """A gateway with a tenant `acme`: agent `bot` with a key that has made calls, and an
    admin key made with the CLI, as an operator would."""

    server: Server
    fake: FakeUpstream
    database_url: str
    admin_key: str
    bot_key: str
    bot_id: str

    @property
    def url(self) -> str:
        return self.server.url


def cli(database_url: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "AINFERA_DATABASE_URL": database_url}
    proc = subprocess.run([AINFERA, *args, "--json"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console-gw")
    url = f"sqlite:///{tmp}/gateway.db"
    with start_fake_upstream() as fake:
        for model in ("up-gpt", "up-gemini", "up-claude", "up-weak"):
            fake.script(model, text(f"Hello from {model}."))
        world = prepare_world(url, daily_cap_usd="5.00")
        admin = cli(url, "key", "create", "--tenant", "acme", "--admin")
        with serve(url, fake, tmp) as server:
            yield Console(server, fake, url, admin["key"], world.key, world.agent_id)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any, artifacts: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield tab
    finally:
        context.close()
    # A script error or a CSP violation on any page fails the test that caused it. 4xx answers
    # the page asked for on purpose (a revoked key) are logged by Chromium as resource errors.
    unexpected = [e for e in errors if "status of 4" not in e]
    assert not unexpected, unexpected
