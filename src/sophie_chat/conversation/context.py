"""What the assistant knows around a message: who asks, from which page, and what the KB says.

Everything here is synchronous and uses the ORM. The AI layer calls :func:`build_turn_context`
inside ONE ``database_sync_to_async`` unit per turn (it runs a handful of queries in one go)::

    context = await database_sync_to_async(build_turn_context)(turn)

:class:`ContextManager` groups the same functions for callers that prefer an object.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.utils.module_loading import import_string

from sophie_chat.conf import get_config
from sophie_chat.knowledge import text
from sophie_chat.knowledge.navigation import NavigationHelp, get_navigation_help
from sophie_chat.knowledge.search import KnowledgeBase
from sophie_chat.knowledge.services import get_service_info
from sophie_chat.logging import get_logger

logger = get_logger(__name__)

USER_TYPES = ("anonymous", "staff", "provider", "client")
PROVIDER_GROUPS = frozenset({"provider", "providers", "prestador", "prestadores"})
DEFAULT_BUDGET_TOKENS = 1200

# Keys of profile facts that are never passed on, whatever the site's provider returns.
_SENSITIVE_KEY_RE = re.compile(
    r"e_?mail|phone|fone|celular|whats|cpf|cnpj|rg\b|passw|senha|address|endereco|cep|zip|"
    r"token|secret|card|cartao|birth|nascimento|document|ssn|iban|pix",
    re.IGNORECASE,
)
# Values that look like personal data, whatever their key.
_SENSITIVE_VALUE_RE = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.]+"  # e-mail
    r"|\d{3}\.?\d{3}\.?\d{3}-?\d{2}"  # CPF
    r"|\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}"  # CNPJ
    r"|\(?\d{2}\)?\s?9?\d{4}-?\d{4}"  # Brazilian phone
)
_SERVICE_WORDS = """preço preco precos valor valores custa custo cobra orçamento orcamento
    quanto disponível disponivel disponibilidade agenda horário price prices cost costs much
    quote available availability rate"""
_SERVICE_HINTS = frozenset(text.normalize(_SERVICE_WORDS).split())
_NAVIGATION_HINTS = ("onde estou", "where am i", "perdido", "lost", "nao encontr", "not found")


def default_user_type(user: Any) -> str:
    """Return "anonymous", "staff", "provider" or "client" for a user.

    In order: not logged in -> anonymous; ``is_staff`` -> staff; a ``user_type`` (or
    ``sophie_user_type``) attribute holding one of the four types -> that; a truthy
    ``is_provider`` attribute, or membership of a group named providers / prestadores ->
    provider; anyone else -> client. Sites with other rules set ``USER_TYPE_RESOLVER``.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous"
    if getattr(user, "is_staff", False):
        return "staff"
    for attr in ("sophie_user_type", "user_type"):
        value = getattr(user, attr, None)
        if isinstance(value, str) and value in USER_TYPES:
            return value
    if getattr(user, "is_provider", False):
        return "provider"
    groups = getattr(user, "groups", None)
    if groups is not None and hasattr(groups, "filter"):
        names = [n.lower() for n in groups.values_list("name", flat=True)]
        if PROVIDER_GROUPS.intersection(names):
            return "provider"
    return "client"


def get_user_type(user: Any) -> str:
    """The user's type through ``USER_TYPE_RESOLVER``; a failing or odd resolver -> default."""
    path = get_config()["USER_TYPE_RESOLVER"]
    try:
        resolver = import_string(path) if isinstance(path, str) else path
        value = resolver(user) if resolver else default_user_type(user)
    except Exception as exc:
        logger.warning("user_type_resolver_failed", error=type(exc).__name__)
        return default_user_type(user)
    return value if value in USER_TYPES else default_user_type(user)


def sanitize_user_context(data: Any, _depth: int = 0) -> Any:
    """Drop keys and values that look like personal data; cap sizes. Returns a new object."""
    if isinstance(data, dict):
        clean: dict[str, Any] = {}
        for key, value in list(data.items())[:30]:
            if _SENSITIVE_KEY_RE.search(str(key)) or _depth > 3:
                continue
            value = sanitize_user_context(value, _depth + 1)
            if value is not None:
                clean[str(key)[:64]] = value
        return clean
    if isinstance(data, list | tuple):
        items = [sanitize_user_context(v, _depth + 1) for v in list(data)[:20]]
        return [v for v in items if v is not None]
    if isinstance(data, str):
        return None if _SENSITIVE_VALUE_RE.search(data) else data[:200]
    if data is None or isinstance(data, bool | int | float):
        return data
    return sanitize_user_context(str(data), _depth)


def get_user_context(user: Any) -> dict[str, Any]:
    """Safe profile facts from ``USER_CONTEXT_PROVIDER`` (``{}`` without one or on failure).

    The result is sanitised even though providers are asked for safe facts only: e-mail,
    phone, CPF, CNPJ, password and address keys, and values that look like them, are removed.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return {}
    path = get_config()["USER_CONTEXT_PROVIDER"]
    if not path:
        return {}
    try:
        provider = import_string(path) if isinstance(path, str) else path
        data = provider(user) or {}
    except Exception as exc:
        logger.warning("user_context_provider_failed", error=type(exc).__name__)
        return {}
    return sanitize_user_context(dict(data)) if isinstance(data, dict) else {}


def _path_of(url: Any, cap: int = 300) -> str:
    if not isinstance(url, str) or not url:
        return ""
    # The query string and fragment may hold personal data (?email=...): keep the path only.
    return (urlsplit(url.strip()).path or "/")[:cap]


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def get_navigation_context(page: dict[str, Any] | None) -> dict[str, Any]:
    """The page a message was sent from, normalised and capped.

    Returns ``{"url", "title", "referrer", "status", "time_on_page", "is_error_page",
    "error"}``: paths only (no query strings), the referrer's host when it is another site,
    ``time_on_page`` in seconds (from ``time_on_page`` seconds or ``time_on_page_ms``),
    ``error`` one of "not_found", "forbidden", "server_error", "client_error" or "".
    """
    page = page if isinstance(page, dict) else {}
    status = _int_or_none(page.get("status"))
    if status is not None and not 100 <= status <= 599:
        status = None
    referrer_raw = page.get("referrer") if isinstance(page.get("referrer"), str) else ""
    ref = urlsplit(referrer_raw.strip()) if referrer_raw else None
    page_host = urlsplit(page.get("url") or "").netloc if isinstance(page.get("url"), str) else ""
    if ref is None:
        referrer = ""
    elif ref.netloc and page_host and ref.netloc != page_host:
        referrer = ref.netloc[:100]
    else:
        referrer = (ref.path or "/")[:300]
    seconds = _int_or_none(page.get("time_on_page"))
    if seconds is None and _int_or_none(page.get("time_on_page_ms")) is not None:
        seconds = int(page["time_on_page_ms"]) // 1000
    error = ""
    if status is not None and status >= 400:
        error = {404: "not_found", 410: "not_found", 403: "forbidden", 401: "forbidden"}.get(
            status, "server_error" if status >= 500 else "client_error"
        )
    raw_title = page.get("title")
    title = raw_title if isinstance(raw_title, str) else ""
    return {
        "url": _path_of(page.get("url")),
        "title": " ".join(title.split())[:200],
        "referrer": referrer,
        "status": status,
        "time_on_page": max(0, min(seconds, 86_400)) if seconds is not None else None,
        "is_error_page": bool(error),
        "error": error,
    }


def estimate_tokens(value: str) -> int:
    """A rough token count (about four characters per token)."""
    return (len(value) + 3) // 4


def is_service_inquiry(query: str, intent: str = "") -> bool:
    if intent == "service_inquiry":
        return True
    return bool(_SERVICE_HINTS.intersection(text.words(query)))


def is_where_am_i(query: str, intent: str = "") -> bool:
    normalized = text.normalize(query)
    return intent == "navigation_help" or any(h in normalized for h in _NAVIGATION_HINTS)


def _audience_for(user_type: str) -> str | None:
    # Staff see everything (they test the assistant); anonymous visitors are most often
    # prospective clients, so they get the client entries too.
    if user_type == "staff":
        return None
    return "provider" if user_type == "provider" else "client"


def _fit(items: list[dict[str, Any]], budget_tokens: int) -> list[dict[str, Any]]:
    chosen: list[dict[str, Any]] = []
    seen: set[str] = set()
    left = budget_tokens
    for item in items:
        if item["slug"] in seen:
            continue
        cost = estimate_tokens(item["title"]) + estimate_tokens(item["content"]) + 8
        if cost > left:
            room = (left - estimate_tokens(item["title"]) - 8) * 4
            if room < 200:
                continue
            item = {**item, "content": item["content"][: room - 1].rstrip() + "…"}
            cost = left
        chosen.append(item)
        seen.add(item["slug"])
        left -= cost
    return chosen


def build_knowledge_base_context(
    query: str,
    *,
    language: str | None,
    user_type: str = "anonymous",
    page: dict[str, Any] | None = None,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    intent: str = "",
    limit: int = 5,
) -> list[dict[str, Any]]:
    """Knowledge for one question, best first, within ``budget_tokens``.

    Each item is ``{"slug", "title", "content", "url", "category", "score"}``. Mixes the top
    search results (filtered to the user's audience), the guide of the current page (first on
    an error page or for "where am I?" questions) and, for service inquiries, service details
    from the ``SERVICE_INFO_PROVIDER`` (category "service_info"). ``page`` is the widget's page
    dict (raw or already passed through :func:`get_navigation_context`).
    """
    lang = text.primary_language(language or get_config()["DEFAULT_LANGUAGE"])
    nav = get_navigation_context(page)
    help_ = _page_help(nav, lang, _audience_for(user_type))
    return _assemble(query, lang, user_type, nav, help_, budget_tokens, intent, limit)


def _page_help(nav: dict[str, Any], lang: str, audience: str | None) -> NavigationHelp | None:
    if not (nav["url"] or nav["status"]):
        return None
    return get_navigation_help(nav["url"], lang, status=nav["status"], audience=audience)


def _assemble(
    query: str,
    lang: str,
    user_type: str,
    nav: dict[str, Any],
    help_: NavigationHelp | None,
    budget_tokens: int,
    intent: str,
    limit: int,
) -> list[dict[str, Any]]:
    audience = _audience_for(user_type)
    results = KnowledgeBase().search(query, language=lang, audience=audience, limit=limit)
    hits = [r.as_context() for r in results]
    if hits:
        # Weak hits far below the best one cost budget and mislead the model.
        best = hits[0]["score"]
        hits = [h for h in hits if h["score"] >= best * 0.25]
    items: list[dict[str, Any]] = []
    if help_ is not None and (nav["is_error_page"] or is_where_am_i(query, intent) or not hits):
        items = [help_.as_context(), *hits]
    else:
        items = hits[:1] + ([help_.as_context()] if help_ else []) + hits[1:]
    if is_service_inquiry(query, intent):
        services = [
            {
                # Details drawn from a knowledge entry keep its slug: no duplicate of a hit.
                "slug": s.extra.get("slug") or f"service-info-{i}",
                "title": s.title,
                "content": s.as_text(),
                "url": s.url,
                "category": "service_info",
                "score": 1.0,
            }
            for i, s in enumerate(get_service_info(query, language=lang, limit=3))
        ]
        slugs = {h["slug"] for h in items}
        services = [s for s in services if s["slug"] not in slugs]
        items = items[:1] + services + items[1:]
    return _fit(items, budget_tokens)


def build_turn_context(turn: Any, *, user: Any = None, budget_tokens: int | None = None) -> dict:
    """Everything the prompt builder and the offline backend need for one turn, in one go.

    Synchronous (ORM): call it inside one ``database_sync_to_async`` unit. ``turn`` is a
    :class:`sophie_chat.ai.base.Turn`. Returns ``{"user_type", "user_context", "navigation",
    "navigation_help", "knowledge", "is_service_inquiry"}``; ``knowledge`` is the list from
    :func:`build_knowledge_base_context`. ``user_context`` is the turn's (already sanitised
    by the caller) or, given ``user``, freshly read from the context provider.
    """
    nav = get_navigation_context(getattr(turn, "page", None))
    lang = text.primary_language(getattr(turn, "language", None))
    user_type = getattr(turn, "user_type", "anonymous") or "anonymous"
    help_ = _page_help(nav, lang, _audience_for(user_type))
    user_context = getattr(turn, "user_context", None) or {}
    if not user_context and user is not None:
        user_context = get_user_context(user)
    intent = getattr(turn, "intent", "") or ""
    budget = budget_tokens or DEFAULT_BUDGET_TOKENS
    knowledge = _assemble(turn.text, lang, user_type, nav, help_, budget, intent, 5)
    return {
        "user_type": user_type,
        "user_context": sanitize_user_context(user_context),
        "navigation": nav,
        "navigation_help": help_.as_dict() if help_ else None,
        "knowledge": knowledge,
        "is_service_inquiry": is_service_inquiry(turn.text, intent),
    }


class ContextManager:
    """The context functions as one object (``ContextManager().build_turn_context(turn)``)."""

    default_user_type = staticmethod(default_user_type)
    get_user_type = staticmethod(get_user_type)
    get_user_context = staticmethod(get_user_context)
    get_navigation_context = staticmethod(get_navigation_context)
    build_knowledge_base_context = staticmethod(build_knowledge_base_context)
    build_turn_context = staticmethod(build_turn_context)
