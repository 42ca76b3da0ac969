"""Keep the garbage collector's full passes short in a chat worker (``GC_FREEZE``).

CPython's cyclic garbage collector now and then walks every object the process tracks. A worker
holds a few hundred thousand that live as long as it does (Django, the site, the SDKs, the
modules the first requests import), and while a pass runs every socket of the worker waits:
measured in the load benchmark at 100 chatting sessions, one full pass took 146 ms; with the
process's long-lived objects frozen (``gc.freeze()``, which moves them out of the collector's
sight; they are still freed when their last reference goes), 13 to 42 ms.

Two moments are frozen, each once per process:

- :func:`at_startup`, from :func:`sophie_chat.routing.get_asgi_application`: everything imported
  and built before the worker serves;
- :func:`after_first_turn`, when the worker's first answer is stored: by then the first requests
  have imported the rest (the SDK's HTTP clients, the Redis client, the database pool...). The
  few sockets open at that moment are frozen with them: a reference cycle among their objects
  is then never collected, a few kilobytes once in the worker's life.
"""

from __future__ import annotations

import gc

from sophie_chat.conf import get_config
from sophie_chat.logging import get_logger

logger = get_logger(__name__)

_done: set[str] = set()


def freeze(moment: str) -> bool:
    """Collect, then freeze what is left (once per ``moment`` and process); whether it did."""
    if moment in _done or not get_config()["GC_FREEZE"]:
        return False
    _done.add(moment)
    gc.collect()
    gc.freeze()
    logger.info("gc_frozen", moment=moment, objects=gc.get_freeze_count())
    return True


def at_startup() -> bool:
    return freeze("startup")


def after_first_turn() -> bool:
    return freeze("first_turn")


def forget() -> None:
    """Let both moments freeze again (tests, which unfreeze what they froze)."""
    _done.clear()
