"""A preloaded parent of the fault suites' server: ``python -m tests.faults.standby --port N``.

It imports and sets up everything once (Django, the chat, the OpenAI SDK, the knowledge index),
prints ``ready``, then forks a fresh uvicorn server process on the port for every line it reads
on stdin and prints the child's pid, as ``gunicorn --preload`` respawns a worker. The
kill-and-restart suite SIGKILLs the serving child and asks for another: a restart then costs a
fork and a bind instead of seconds of imports on a busy machine. Every child starts from the
same state, with no connection, thread or event loop inherited.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys

import uvicorn

from tests.faults.asgi import application


def _warm_up() -> None:
    from django.db import connections

    from sophie_chat.ai.base import Turn
    from sophie_chat.ai.context import gather_sync

    gather_sync(Turn(session_id="warm-up", text="como pagar"))
    # Nothing with a thread or a socket may cross the fork: close the pool and its workers.
    connections["default"].close()
    connections["default"].close_pool()


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when the parent dies, so a crashed test run leaves no server."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _serve(port: int) -> None:
    _die_with_parent()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stdout is the parent's channel to the test: logs go to the log file
    sys.stdout = sys.stderr
    uvicorn.run(
        application,
        host="127.0.0.1",
        port=port,
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=1,
        log_level="warning",
        lifespan="off",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    _warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print("ready", flush=True)
    children: list[int] = []
    # stdin ends when the test process goes away, however it ends: take the children along.
    for _line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                _serve(args.port)
            finally:
                os._exit(0)
        children.append(pid)
        print(pid, flush=True)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
