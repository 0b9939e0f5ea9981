"""Gives every Python thread of a process its Python name as its kernel name, so the bench can
read each thread's CPU from /proc/PID/task/TID/stat and tell the writer from the event loop
from a pool thread by /proc/PID/task/TID/comm.

Python imports `sitecustomize` at start-up from its path; the bench puts this folder on
PYTHONPATH for the processes it measures (the gateway, and through the gateway's environment
its projector child) and for nothing else. Python 3.11 keeps thread names to itself (3.14
passes them on); this sets the name with prctl(PR_SET_NAME) in the new thread before it runs.
It changes no behaviour: a failure to name a thread is ignored.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from typing import Any

_PR_SET_NAME = 15  # linux/prctl.h
_libc = ctypes.CDLL(None, use_errno=True)
_bootstrap_inner: Any = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]


def _named_bootstrap(self: threading.Thread) -> None:
    # Best effort: the thread must run whether or not it could be named. The kernel keeps 15
    # bytes and a NUL.
    with contextlib.suppress(Exception):
        _libc.prctl(_PR_SET_NAME, ctypes.c_char_p(self.name.encode()[:15]), 0, 0, 0)
    _bootstrap_inner(self)


threading.Thread._bootstrap_inner = _named_bootstrap  # type: ignore[attr-defined]
