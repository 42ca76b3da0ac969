"""Create anonymous visitors' Django sessions in the benchmark database and print their keys.

``python -m benchmarks.visitors 300`` (with the benchmark's environment) prints
``{"cookie": "sessionid", "keys": [...]}``: each key is one visitor, as if it had loaded a page
that renders the widget's template tag (which makes sure a session cookie exists).
"""

from __future__ import annotations

import json
import sys

import django


def main() -> None:
    django.setup()
    from django.conf import settings
    from django.utils.module_loading import import_string

    count = int(sys.argv[1])
    store_class = import_string(settings.SESSION_ENGINE + ".SessionStore")
    keys = []
    for _ in range(count):
        store = store_class()
        # An empty session is not saved by Django; a real visitor's has the CSRF token and such.
        store["bench_visitor"] = True
        store.create()
        keys.append(store.session_key)
    print(json.dumps({"cookie": settings.SESSION_COOKIE_NAME, "keys": keys}))


if __name__ == "__main__":
    main()
