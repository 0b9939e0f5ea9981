"""The peer: LiteLLM's proxy, pinned version, one worker, no database, forwarding to the same
fake upstream as an Anthropic backend, measured with the same load and pinning as the gateway.

`make bench-compare` creates its own venv under bench/.litellm-venv (gitignored) with the
version and dependencies pinned in bench/litellm-requirements.txt, then runs
`python -m bench --litellm bench/.litellm-venv/bin/litellm`. `make test` and `make bench` never
need it.

Nothing is fetched when it starts: LITELLM_LOCAL_MODEL_COST_MAP=True makes it use the cost map
bundled in the package instead of downloading one, and the other LITELLM_LOCAL_* switches of
this version do the same for the Anthropic beta headers, blog posts, policy templates and
auto-router presets. The machine has no route out anyway, so a fetch it still tried would only
slow its start; `fetch_attempts` counts them in its log for the report.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import FakeServer
from bench.pinning import Pinning
from bench.servers import Running, server_process

MASTER_KEY = "sk-bench-litellm"
MODEL = "fake-claude"
LOCAL_ONLY = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_TELEMETRY": "False",
}

# One Anthropic deployment on the fake upstream, the master key as the only credential (it is
# what a proxy without a database accepts), no callbacks, no logging of requests.
CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: anthropic/up-claude
      api_base: {base}
      api_key: sk-ant-fake
general_settings:
  master_key: {key}
litellm_settings:
  telemetry: false
  drop_params: true
  set_verbose: false
"""


# Uvicorn's default logging without the access log: the gateway and the floor run without one
# (access_log=False), so LiteLLM does too rather than pay a log line per request.
LOG_CONFIG = """\
{"version": 1, "disable_existing_loggers": false,
 "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
 "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain",
                         "stream": "ext://sys.stderr"}},
 "loggers": {"uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": false},
             "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": false}}}
"""


def config_text(base_url: str) -> str:
    return CONFIG.format(model=MODEL, base=base_url, key=MASTER_KEY)


@contextmanager
def litellm(binary: Path, fake: FakeServer, tmp: Path, pinning: Pinning) -> Iterator[Running]:
    work = tmp / "litellm"
    work.mkdir(exist_ok=True)
    config = work / "config.yaml"
    config.write_text(config_text(fake.base_url))
    log_config = work / "log.json"
    log_config.write_text(LOG_CONFIG)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PYTHON", "VIRTUAL_ENV", "DATABASE_URL"))}
    env |= LOCAL_ONLY
    command = [str(binary.absolute()), "--config", str(config), "--host", "127.0.0.1",
               "--num_workers", "1", "--log_config", str(log_config)]
    with server_process("litellm", command, env, work, work / "litellm.log",
                        "/health/liveliness", pinning, 180) as running:
        running.key = MASTER_KEY
        yield running


def fetch_attempts(log: Path) -> int:
    """Lines of LiteLLM's log that say it tried to fetch something from outside."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines()
               if "fetch" in line.lower() and ("fail" in line.lower() or "http" in line.lower()))


def version(binary: Path) -> str:
    import subprocess

    done = subprocess.run([str(binary.absolute().with_name("python")), "-c",  # noqa: S603
                           "import importlib.metadata as m; print(m.version('litellm'))"],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip() or "?"
