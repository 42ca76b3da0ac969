"""What the marketplace tells Sophie: who the user is, safe profile facts, and service details.

Named in ``CHAT_CONFIG`` (``USER_TYPE_RESOLVER``, ``USER_CONTEXT_PROVIDER``,
``SERVICE_INFO_PROVIDER``). Sophie calls these from a worker thread, so plain ORM calls are fine.
Whatever is returned here may reach the language model: only facts the user would not mind the
assistant knowing, never contact data or documents (phone, e-mail, CPF).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from marketplace.models import Booking, Profile, Service
from sophie_chat.knowledge.services import ServiceInfo, ServiceInfoProvider


def _profile(user: Any) -> Profile | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    try:
        return user.profile
    except Profile.DoesNotExist:
        return None


def user_type(user: Any) -> str:
    """``"anonymous"``, ``"staff"``, ``"provider"`` or ``"client"``."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous"
    if user.is_staff:
        return "staff"
    profile = _profile(user)
    if profile is not None and profile.is_provider:
        return "provider"
    return "client"


def user_context(user: Any) -> dict[str, Any]:
    """Safe facts about the user for the assistant: name, city, kind of account, activity."""
    profile = _profile(user)
    if profile is None:
        return {}
    context: dict[str, Any] = {
        "first_name": user.first_name or user.get_username(),
        "kind": profile.kind,
        "city": profile.city,
        "bookings": Booking.objects.filter(client=user).count(),
        "open_bookings": Booking.objects.filter(
            client=user, status__in=[Booking.Status.REQUESTED, Booking.Status.CONFIRMED]
        ).count(),
    }
    if profile.is_provider:
        context["services"] = list(profile.services.values_list("title", flat=True)[:10])
        context["open_requests"] = (
            Booking.objects.filter(service__provider=profile)
            .filter(status__in=[Booking.Status.REQUESTED, Booking.Status.CONFIRMED])
            .count()
        )
    return context


# --- Service information ------------------------------------------------------------------------

_WORD_RE = re.compile(r"[a-z0-9]+")
# Words that say nothing about which service is meant ("quanto custa uma diarista?").
_STOP = frozenset(
    """
    quanto quanta custa custam cobra preco valor valores uma umas uns para com por que qual quais
    voce voces tem ter preciso quero gostaria contratar servico servicos onde como minha meu
    how much does cost costs price the for and with what which need want hire service services
    """.split()  # noqa: SIM905 - a word list reads better as prose
)


def _words(text: str) -> list[str]:
    plain = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch))
    return [w for w in _WORD_RE.findall(plain) if len(w) >= 3 and w not in _STOP]


def _stem(word: str) -> str:
    # A crude stem is enough for titles and tags: "diaristas" and "diarista" meet, as do
    # "eletricista" and "eletricistas". Accents are already gone.
    return word[:6] if len(word) > 6 else word.rstrip("s")


class MarketplaceServices(ServiceInfoProvider):
    """Quotes the marketplace's services (price in BRL, unit, availability, link) to Sophie."""

    def search(self, query: str, *, language: str, limit: int = 3) -> list[ServiceInfo]:
        """The services a question is about, best first (by words in tags, title, category)."""
        words = {w.rstrip("s") for w in _words(query)}
        stems = {_stem(w) for w in words}
        if not stems:
            return []
        # Scored in Python, accent-insensitively, over one query: the demo has a few dozen
        # services. A large site would ask its full-text search (or Sophie's) here instead.
        candidates = Service.objects.select_related("category", "provider__user")[:500]
        scored = []
        for service in candidates:
            score = self._score(service, words)
            if score:
                scored.append((score, service.available, float(service.rating), service))
        scored.sort(key=lambda item: item[:3], reverse=True)
        return [self._info(s, language) for *_rest, s in scored[:limit]]

    def for_object(self, obj: Any) -> ServiceInfo | None:
        """Details of one service (the page the user is on, or a linked knowledge entry)."""
        if not isinstance(obj, Service):
            return None
        return self._info(obj, translation.get_language() or "pt-br")

    @staticmethod
    def _score(service: Service, words: set[str]) -> float:
        fields = (
            (3.0, service.tags),
            (2.0, service.title),
            (1.0, service.category.name),
            (0.3, service.description),
            (1.0, service.city),
        )
        stems = {_stem(w) for w in words}
        score = 0.0
        for weight, text in fields:
            if text is service.city and not score:
                break  # the city narrows a match down; alone it is no match
            found = {w.rstrip("s") for w in _words(text)}
            exact = words & found
            # The same word counts fully; a relative ("eletrico" for "eletricista") by half.
            score += weight * (len(exact) + 0.5 * len(stems & {_stem(w) for w in found - exact}))
        return score

    @staticmethod
    def _info(service: Service, language: str) -> ServiceInfo:
        with translation.override(language):
            if service.available:
                availability = service.availability or _("Ask the provider")
            else:
                availability = _("Not taking bookings right now")
            return ServiceInfo(
                title=service.title,
                description=service.description,
                price=service.price_display,
                price_value=service.price,
                currency="BRL",
                price_unit=str(service.get_price_unit_display()),
                availability=availability,
                url=service.get_absolute_url(),
                category=service.category.name,
                # The provider's public name and rating only, as on the public service page.
                extra={
                    "city": service.city,
                    "provider": service.provider.display_name,
                    "rating": str(service.rating),
                    "available": service.available,
                },
            )
