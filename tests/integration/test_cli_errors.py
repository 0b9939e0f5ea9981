"""Every `ainfera` command, and `serve` at start, as a user meets its failures: one line on
stderr naming what to fix, `{"error": ...}` on stdout under --json, exit 1 for a failure and 2
for a wrong command line; never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import POSTGRES_URL
from tests.fakes.upstream import closed_port

AINFERA = str(Path(sys.executable).with_name("ainfera"))

STORE_COMMANDS = [
    ("migrate",),
    ("tenant", "create", "acme"),
    ("tenant", "list"),
    ("agent", "create", "--tenant", "acme", "--name", "bot"),
    ("agent", "list", "--tenant", "acme"),
    ("agent", "set-cap", "--tenant", "acme", "--agent", "bot", "--no-cap"),
    ("key", "create", "--tenant", "acme"),
    ("key", "list", "--tenant", "acme"),
    ("key", "revoke", "ak_whatever"),
    ("project", "--once"),
    ("verify",),
    ("rebuild", "agents"),
]


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AINFERA, *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=timeout, check=False)


def assert_one_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command", STORE_COMMANDS, ids=" ".join)
def test_an_unreachable_store_is_one_line_for_every_command(command: tuple[str, ...],
                                                            tmp_path: Path) -> None:
    url = f"postgresql://postgres:s3cret@127.0.0.1:{closed_port()}/nope"
    env = {"AINFERA_DATABASE_URL": url, "AINFERA_SIGNING_KEY_FILE": str(tmp_path / "k")}
    line = assert_one_line(run(env, *command), 1, "AINFERA_DATABASE_URL", "refused")
    assert "s3cret" not in line  # the password is never printed
    as_json = run(env, *command, "--json")
    assert as_json.returncode == 1
    assert list(json.loads(as_json.stdout)) == ["error"] or "error" in json.loads(as_json.stdout)
    assert "AINFERA_DATABASE_URL" in json.loads(as_json.stdout)["error"]


def test_an_unwritable_store_path_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {"AINFERA_DATABASE_URL": f"sqlite:///{blocker}/sub/ainfera.db"}
    assert_one_line(run(env, "tenant", "create", "acme"), 1, "AINFERA_DATABASE_URL")


def test_usage_errors_exit_2_and_speak_json_when_asked(tmp_path: Path) -> None:
    env = {"AINFERA_DATABASE_URL": f"sqlite:///{tmp_path}/a.db"}
    proc = run(env, "agent", "set-cap", "--tenant", "acme", "--agent", "bot", "--json")
    assert proc.returncode == 2
    assert "one of the arguments" in json.loads(proc.stdout)["error"]
    assert_one_line(proc, 2, "one of the arguments")
    assert_one_line(run(env, "frobnicate"), 2, "invalid choice")
    consistency = run(env, "receipt", "verify", "r.json", "--vkey", "v", "--consistency", "p")
    assert_one_line(consistency, 2, "--checkpoint")


def test_a_bad_setting_is_one_line(tmp_path: Path) -> None:
    env = {"AINFERA_DATABASE_URL": f"sqlite:///{tmp_path}/a.db", "AINFERA_PORT": "eighty"}
    assert_one_line(run(env, "tenant", "list", "--json"), 1, "AINFERA_PORT")


def serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"AINFERA_DATABASE_URL": f"sqlite:///{tmp_path}/a.db",
            "AINFERA_SIGNING_KEY_FILE": str(tmp_path / "signing.key"), **extra}


def test_serve_with_a_config_typo_is_one_line_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "ainfera.toml"
    config.write_text('[providers.openai]\nkind = "openai"\nbase_urll = "http://x"\n'
                      'api_key_env = "K"\n')
    proc = run(serve_env(tmp_path, AINFERA_CONFIG=str(config)), "serve",
               "--port", str(closed_port()))
    assert_one_line(proc, 1, "base_urll", str(config))


def test_serve_with_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    proc = run(serve_env(tmp_path, AINFERA_CONFIG=str(tmp_path / "nope.toml")), "serve",
               "--port", str(closed_port()))
    assert_one_line(proc, 1, "nope.toml")


def test_serve_with_an_unusable_signing_key_path_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = serve_env(tmp_path, AINFERA_SIGNING_KEY_FILE=str(blocker / "signing.key"))
    assert_one_line(run(env, "serve", "--port", str(closed_port())), 1,
                    "AINFERA_SIGNING_KEY_FILE")


def test_serve_with_a_store_that_is_down_is_one_line(tmp_path: Path) -> None:
    env = serve_env(tmp_path, AINFERA_DATABASE_URL=f"postgresql://u@127.0.0.1:{closed_port()}/d")
    assert_one_line(run(env, "serve", "--port", str(closed_port())), 1, "AINFERA_DATABASE_URL")


def test_serve_with_a_malformed_redis_url_is_one_line(tmp_path: Path) -> None:
    env = serve_env(tmp_path, AINFERA_REDIS_URL="http://127.0.0.1:6379")
    assert_one_line(run(env, "serve", "--port", str(closed_port())), 1, "AINFERA_REDIS_URL")


@pytest.mark.postgres
def test_a_wrong_database_name_is_one_line(postgres_url: str) -> None:
    wrong = postgres_url.split("?")[0].rsplit("/", 1)[0] + f"/no_such_db_{uuid.uuid4().hex[:6]}"
    assert_one_line(run({"AINFERA_DATABASE_URL": wrong}, "tenant", "list"), 1,
                    "does not exist", "AINFERA_DATABASE_URL")


@pytest.mark.postgres
def test_a_missing_schema_is_created(postgres_url: str) -> None:
    base = postgres_url.split("?")[0]
    schema = f"new_{uuid.uuid4().hex[:12]}"
    env = {"AINFERA_DATABASE_URL": f"{base}?schema={schema}"}
    try:
        created = run(env, "tenant", "create", "acme", "--json")
        assert created.returncode == 0, created.stderr
        listed = run(env, "tenant", "list", "--json")
        assert [t["name"] for t in json.loads(listed.stdout)["tenants"]] == ["acme"]
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
