"""The built wheel carries every package file and works in a fresh virtualenv on its own deps."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SMOKE_SETTINGS = """
SECRET_KEY = "smoke"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "smoke_urls"
ASGI_APPLICATION = "smoke_asgi.application"
USE_TZ = True
LANGUAGE_CODE = "pt-br"
STATIC_URL = "/static/"
INSTALLED_APPS = [
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.staticfiles", "channels", "sophie_chat",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
"""
SMOKE_URLS = """
from django.urls import include, path
urlpatterns = [path("chat/", include("sophie_chat.urls"))]
"""
SMOKE_ASGI = """
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smoke_settings")
from sophie_chat.routing import get_asgi_application
application = get_asgi_application()
"""
SMOKE = """
# First, as an ASGI server does: import the site's asgi.py before Django is set up.
import smoke_asgi
import django
from django.core.management import call_command
django.setup()
import sophie_chat
assert "site-packages" in sophie_chat.__file__, sophie_chat.__file__
call_command("check", fail_level="WARNING")
call_command("migrate", verbosity=0)
from sophie_chat.routing import websocket_urlpatterns
assert websocket_urlpatterns and smoke_asgi.application
from django.contrib.staticfiles import finders
from django.template.loader import get_template
from django.utils import translation
from django.utils.translation.trans_real import translation as catalog
assert finders.find("sophie_chat/widget.js") or finders.find("sophie_chat/conversation.js")
get_template("sophie_chat/widget.html")
assert catalog("pt-br")._catalog, "no pt_BR catalog"
print("smoke ok")
"""


def _uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # tox's pkg env builds the distributions first and points here, so it builds them once.
    prebuilt = os.environ.get("SOPHIE_DIST_DIR")
    if prebuilt:
        return next(Path(prebuilt).glob("django_sophie_chat-*.whl"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [_uv(), "build", "--wheel", "--out-dir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("django_sophie_chat-*.whl"))


@pytest.mark.slow
def test_wheel_carries_every_package_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "sophie_chat/py.typed" in names
    assert "sophie_chat/migrations/0001_initial.py" in names
    assert "sophie_chat/templates/sophie_chat/widget.html" in names
    assert any(n.startswith("sophie_chat/static/sophie_chat/") for n in names)
    assert "sophie_chat/locale/pt_BR/LC_MESSAGES/django.mo" in names
    assert not any(n.startswith("tests/") for n in names)
    # A stale setuptools build/ directory leaks deleted modules into wheels: nothing extra ships.
    extra = {n for n in names if n.startswith("sophie_chat/") and not (ROOT / "src" / n).exists()}
    assert extra == set(), "stale files in the wheel: `make clean` removes build/"
    tracked = subprocess.run(
        ["git", "ls-files", "src/sophie_chat"], cwd=ROOT, capture_output=True, text=True
    )
    if tracked.returncode == 0:  # a git checkout: everything committed under the package ships
        missing = {
            path.removeprefix("src/")
            for path in tracked.stdout.split()
            if (ROOT / path).exists() and not path.endswith(".pyc")
        } - names
        assert missing == set()


@pytest.mark.slow
def test_wheel_works_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    uv = _uv()
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        check=True,
        capture_output=True,
    )
    python = venv / "bin" / "python"
    # Only the wheel and its declared dependencies: a missing runtime dependency fails here.
    install = subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    site = tmp_path / "site"
    site.mkdir()
    (site / "smoke_settings.py").write_text(SMOKE_SETTINGS)
    (site / "smoke_urls.py").write_text(SMOKE_URLS)
    (site / "smoke_asgi.py").write_text(SMOKE_ASGI)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "DJANGO_SETTINGS_MODULE": "smoke_settings",
        "PYTHONPATH": str(site),
    }
    result = subprocess.run(
        [str(python), "-W", "error::DeprecationWarning", "-c", SMOKE],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke ok" in result.stdout


def _tox_cells() -> set[tuple[str, str]]:
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    cells = set()
    for line in tox["tox"]["env_list"].split():
        match = re.fullmatch(r"py3(\d+)-django(?:\{([\d,]+)\}|(\d+))", line)
        if match:
            for django in (match.group(2) or match.group(3)).split(","):
                cells.add((f"3.{match.group(1)}", f"{django[0]}.{django[1:]}"))
    return cells


def test_classifiers_docs_and_tox_state_the_same_matrix() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    pythons = set(re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject))
    djangos = set(re.findall(r'"Framework :: Django :: (\d\.\d)"', pyproject))
    cells = _tox_cells()
    assert len(cells) == 8
    assert {python for python, _ in cells} == pythons
    assert {django for _, django in cells} == djangos
    oldest = min(pythons, key=lambda version: int(version.split(".")[1]))
    assert f'requires-python = ">={oldest}"' in pyproject
    installation = (ROOT / "docs" / "installation.rst").read_text(encoding="utf-8")
    assert f"Python {oldest} to {max(pythons, key=lambda v: int(v.split('.')[1]))}" in installation
    assert all(django in installation for django in djangos)
