"""Page-specific guidance: what the user can do on the page they are on, and error pages.

A knowledge base entry is a guide for a page when its ``url_pattern`` is set: either a view name
(``"services:detail"``, matched against ``django.urls.resolve(path)``) or a regular expression
searched in the path (``^/servicos/\\d+/$``). Error pages are matched by the status the widget
reports: ``url_pattern`` ``status:404``, ``status:403``, ``status:500``, ``status:4xx``,
``status:5xx`` or ``status:error``. When the site has no entry for an error page, built-in
help texts in Portuguese and English are used.

The guides (entries with a ``url_pattern``, and the ``navigation`` entries that make the map of
the site) are read once and kept in memory until the knowledge base changes, with the search
index's freshness rules (:func:`sophie_chat.knowledge.index.per_version`): a page's guide costs
no query.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Q
from django.urls import Resolver404, get_urlconf, resolve

from sophie_chat.knowledge import index
from sophie_chat.knowledge.text import primary_language
from sophie_chat.models import KnowledgeBaseEntry

# Pages whose guide is remembered (per knowledge base version) before the memo starts over.
PAGE_MEMO_SIZE = 2048
_VIEW_NAME_RE = re.compile(r"^[\w.-]+(:[\w.-]+)*$")

_BUILTIN: dict[str, dict[str, tuple[str, str]]] = {
    "pt": {
        "404": (
            "Página não encontrada (erro 404)",
            "Esta página não existe ou mudou de endereço. Você pode voltar à página inicial, "
            "usar a busca do site ou me contar o que procurava: eu indico o caminho.",
        ),
        "403": (
            "Acesso negado (erro 403)",
            "Você não tem permissão para ver esta página. Se tem uma conta, entre com ela; se "
            "já entrou, esta área pode ser de outro tipo de conta (cliente ou prestador).",
        ),
        "500": (
            "Erro no site (erro 500)",
            "Algo deu errado do nosso lado, não foi culpa sua. Tente recarregar a página em "
            "alguns instantes; se o erro continuar, fale com o nosso suporte.",
        ),
    },
    "en": {
        "404": (
            "Page not found (error 404)",
            "This page does not exist or has moved. You can go back to the home page, use the "
            "site search, or tell me what you were looking for and I will show you the way.",
        ),
        "403": (
            "Access denied (error 403)",
            "You are not allowed to see this page. If you have an account, log in; if you are "
            "logged in, this area may belong to another kind of account (client or provider).",
        ),
        "500": (
            "Site error (error 500)",
            "Something went wrong on our side; it is not your fault. Try reloading the page in a "
            "moment; if the error persists, contact our support team.",
        ),
    },
}


@dataclass
class NavigationHelp:
    """Guidance for one page. ``source`` is ``"knowledge_base"`` or ``"builtin"``."""

    title: str
    content: str
    url: str = ""
    slug: str = ""
    source: str = "knowledge_base"
    status: int | None = None
    # Main pages to find one's way from an error page: [{"title", "url"}].
    links: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def as_context(self) -> dict[str, Any]:
        """Shaped like a knowledge entry of the turn context."""
        content = self.content
        if self.links:
            # Markdown links: the offline answer quotes this text, and a model copies its shape.
            content += "\n\n" + "\n".join(
                f"- [{link['title']}](<{link['url']}>)" for link in self.links
            )
        return {
            "slug": self.slug or f"navigation-{self.status or 'page'}",
            "title": self.title,
            "content": content,
            "url": self.url,
            "category": "navigation",
            "score": 1.0,
        }


def _status_keys(status: int) -> list[str]:
    family = f"{str(status)[0]}xx"
    return [f"status:{status}", f"status:{family}", "status:error"]


def _builtin_key(status: int) -> str:
    if status == 403 or status == 401:
        return "403"
    return "500" if status >= 500 else "404"


class Guide(NamedTuple):
    """What the page help needs of one entry, kept in memory."""

    slug: str
    lang: str  # primary language: "pt", "en"
    category: str
    audience: str
    title: str
    content: str
    url: str
    url_pattern: str


def _load_guides() -> list[Guide]:
    qs = KnowledgeBaseEntry.objects.filter(
        Q(url_pattern__gt="") | Q(category="navigation"), is_active=True
    ).order_by("category", "title", "pk")
    fields = ("slug", "language", "category", "audience", "title", "content", "url", "url_pattern")
    return [
        Guide(slug, primary_language(lang), *rest) for slug, lang, *rest in qs.values_list(*fields)
    ]


def guides() -> list[Guide]:
    """Active guides and navigation entries, by category and title (the model's order)."""
    return index.per_version("navigation_guides", _load_guides)


def _entries(language: str, audience: str | None, keep: Callable[[Guide], bool]) -> list[Guide]:
    """Guides for which ``keep(guide)`` holds, in ``language``, else in any language."""
    entries = [
        g for g in guides() if keep(g) and (audience is None or g.audience in ("", audience))
    ]
    mine = [g for g in entries if g.lang == language]
    return mine or entries


def main_pages(language: str, audience: str | None = None, limit: int = 6) -> list[dict[str, str]]:
    """Navigation guides that have a link, home page first: a map of the site for lost visitors."""
    entries = _entries(language, audience, lambda g: g.category == "navigation")
    entries.sort(key=lambda e: (e.url != "/", e.title))
    links = [{"title": e.title, "url": e.url} for e in entries if e.url]
    return links[:limit]


def error_help(status: int, language: str | None, audience: str | None = None) -> NavigationHelp:
    """Help for an error page: the site's entry for that status, or the built-in text."""
    lang = primary_language(language)
    keys = _status_keys(status)
    entries = _entries(lang, audience, lambda g: g.url_pattern in keys)
    entries.sort(key=lambda e: keys.index(e.url_pattern))
    links = main_pages(lang, audience)
    if entries:
        e = entries[0]
        return NavigationHelp(e.title, e.content, e.url, e.slug, status=status, links=links)
    title, content = _BUILTIN[lang if lang in _BUILTIN else "pt"][_builtin_key(status)]
    return NavigationHelp(title, content, "/", "", source="builtin", status=status, links=links)


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _view_name(path: str) -> str:
    try:
        return resolve(path).view_name or ""
    except Resolver404:
        return ""


def _specificity(entry: Guide, path: str, view_name: str) -> int:
    """How well a guide fits a page: 0 no match, higher is more specific."""
    pattern = entry.url_pattern
    if pattern.startswith("status:"):
        return 0
    if view_name and _VIEW_NAME_RE.match(pattern) and pattern == view_name:
        return 10_000
    if path:
        compiled = _compiled(pattern)
        if compiled is not None and compiled.search(path):
            return len(pattern)
    return 0


def get_navigation_help(
    url_or_view_name: str,
    language: str | None,
    status: int | None = None,
    audience: str | None = None,
) -> NavigationHelp | None:
    """Guidance for a page, given its URL (or path) or its view name, or ``None``.

    An error ``status`` (400 and above) returns help for the error page, always (the built-in
    text when the site has none). Otherwise the most specific matching guide is returned.
    """
    lang = primary_language(language)
    if status is not None and status >= 400:
        return error_help(status, lang, audience)
    value = (url_or_view_name or "").strip()
    if not value:
        return None
    if "/" in value:
        path, view_name = urlsplit(value).path or "/", ""
    else:
        path, view_name = "", value
    # Pages are asked about again and again: the answer for one is kept with the guides, which
    # saves resolving its path and trying every pattern. The key holds the URLconf the path is
    # resolved with; the size is capped, since paths come from visitors.
    found: dict[tuple[Any, ...], Guide | None] = index.per_version("navigation_pages", dict)
    key = (path, view_name, lang, audience, get_urlconf() or settings.ROOT_URLCONF)
    if key not in found:
        if len(found) >= PAGE_MEMO_SIZE:
            found.clear()
        found[key] = _page_guide(path, view_name or _view_name(path), lang, audience)
    guide = found[key]
    return NavigationHelp(guide.title, guide.content, guide.url, guide.slug) if guide else None


def _page_guide(path: str, view_name: str, lang: str, audience: str | None) -> Guide | None:
    """The most specific guide for a page, in the user's language first."""
    entries = [
        g for g in guides() if g.url_pattern and (audience is None or g.audience in ("", audience))
    ]
    # The user's language first; a guide in another language beats no guide at all.
    mine = [g for g in entries if g.lang == lang]
    others = [g for g in entries if g.lang != lang]
    for candidates in (mine, others):
        best: tuple[int, Guide] | None = None
        for entry in candidates:
            score = _specificity(entry, path, view_name)
            if score and (best is None or score > best[0]):
                best = (score, entry)
        if best is not None:
            return best[1]
    return None
