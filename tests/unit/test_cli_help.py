"""`--help` tells a newcomer what every command and flag does, its default, and which
environment variables the command reads."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from app.cli.main import _commands, build_parser

AINFERA = str(Path(sys.executable).with_name("ainfera"))


def test_every_command_and_flag_is_described_with_its_default() -> None:
    commands = dict(_commands(build_parser()))
    assert {"serve", "demo", "upstream-sim", "migrate", "tenant create", "tenant list",
            "agent create", "agent list", "agent set-cap", "key create", "key list",
            "key revoke", "receipt verify", "project", "verify", "rebuild"} <= set(commands)
    for name, parser in commands.items():
        one_of = {id(a) for group in parser._mutually_exclusive_groups if group.required
                  for a in group._group_actions}  # one of them must be given: no default
        assert parser.epilog, name
        assert parser.epilog.startswith("environment"), name
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, where
            assert action.help != argparse.SUPPRESS, where
            if action.option_strings and action.default not in (None, False):
                assert "default" in action.help, where
            if action.option_strings and action.default is None and not action.required \
                    and action.nargs != 0 and id(action) not in one_of \
                    and not isinstance(action, argparse._AppendAction):
                assert "default" in action.help, where


def test_the_top_level_help_lists_the_environment() -> None:
    proc = subprocess.run([AINFERA, "--help"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0
    for variable in ("AINFERA_DATABASE_URL", "AINFERA_REDIS_URL", "AINFERA_CONFIG",
                     "AINFERA_SIGNING_KEY_FILE", "AINFERA_LOG_FORMAT", "AINFERA_PORT"):
        assert variable in proc.stdout
    serve = subprocess.run([AINFERA, "serve", "--help"], capture_output=True, text=True,
                           timeout=60, check=False)
    assert "default: AINFERA_PORT or 8080" in serve.stdout
    assert "AINFERA_NO_INPROCESS_PROJECTIONS" in serve.stdout
