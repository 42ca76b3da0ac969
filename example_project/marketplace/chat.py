"""What the marketplace tells Sophie: who the user is, safe profile facts, and service details.

Named in ``CHAT_CONFIG`` (``USER_TYPE_RESOLVER``, ``USER_CONTEXT_PROVIDER``,
``SERVICE_INFO_PROVIDER``). Sophie calls these from a worker thread, so plain ORM calls are fine.
Whatever is returned here may reach the language model: only facts the user would not mind the
assistant knowing, never contact data or documents (phone, e-mail, CPF).
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field, replace
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


# Seconds a catalogue snapshot serves searches. Saving or deleting a service in this process
# refreshes it at once (the signals in MarketplaceConfig.ready()); this bounds how long a change
# made elsewhere goes unseen: another process, or QuerySet.update() (bulk availability changes).
CATALOGUE_MAX_AGE = 30.0
CATALOGUE_SIZE = 500
# Weights of the fields a question's words are looked for in: tags, title, category name,
# description, city. The city narrows a match down and is scored last: alone it is no match.
_FIELD_WEIGHTS = (3.0, 2.0, 1.0, 0.3, 1.0)


@dataclass(frozen=True)
class _Field:
    """One field's words, as the score compares them: plain words, and words by crude stem."""

    weight: float
    words: frozenset[str]
    by_stem: dict[str, frozenset[str]]

    @classmethod
    def of(cls, weight: float, text: str) -> _Field:
        words = frozenset(w.rstrip("s") for w in _words(text))
        by_stem: dict[str, set[str]] = {}
        for w in words:
            by_stem.setdefault(_stem(w), set()).add(w)
        return cls(weight, words, {k: frozenset(v) for k, v in by_stem.items()})

    def score(self, words: set[str], stems: set[str]) -> float:
        exact = words & self.words
        # A stem counts when the field has a word with that stem that is not an exact match:
        # the same word counts fully; a relative ("eletrico" for "eletricista") by half.
        relatives = sum(1 for s in stems if s in self.by_stem and not self.by_stem[s] <= exact)
        return self.weight * (len(exact) + 0.5 * relatives)


@dataclass(frozen=True)
class _Listing:
    service: Service
    fields: tuple[_Field, ...]  # tags, title, category, description, city
    # What the chat is told about the service, per language: made once per snapshot.
    infos: dict[str, ServiceInfo] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, service: Service) -> _Listing:
        texts = (
            service.tags,
            service.title,
            service.category.name,
            service.description,
            service.city,
        )
        return cls(
            service, tuple(_Field.of(w, t) for w, t in zip(_FIELD_WEIGHTS, texts, strict=True))
        )

    def score(self, words: set[str], stems: set[str]) -> float:
        score = 0.0
        *main, city = self.fields
        for words_of in main:
            score += words_of.score(words, stems)
        return score + city.score(words, stems) if score else 0.0

    def info(self, language: str) -> ServiceInfo:
        made = self.infos.get(language)
        if made is None:
            made = self.infos[language] = MarketplaceServices._info(self.service, language)
        # A copy: whoever gets it may change it.
        return replace(made, extra=dict(made.extra))


class _Catalogue:
    """The services the chat may quote, with their words, read once and kept in memory."""

    def __init__(self) -> None:
        services = Service.objects.select_related("category", "provider__user")[:CATALOGUE_SIZE]
        self.listings = [_Listing.of(s) for s in services]
        self.read_at = time.monotonic()
        # Crude stem -> listings (by position) that have it outside the city: the only ones a
        # question with that stem can match.
        self.by_stem: dict[str, list[int]] = {}
        for n, listing in enumerate(self.listings):
            for stem in {s for words_of in listing.fields[:-1] for s in words_of.by_stem}:
                self.by_stem.setdefault(stem, []).append(n)

    def candidates(self, stems: set[str]) -> list[_Listing]:
        """The listings sharing a stem with the question, in catalogue order."""
        found = sorted({n for s in stems for n in self.by_stem.get(s, ())})
        return [self.listings[n] for n in found]


_catalogue: _Catalogue | None = None
_catalogue_lock = threading.Lock()


def catalogue() -> _Catalogue:
    """The current snapshot of the catalogue, read again after a change or CATALOGUE_MAX_AGE."""
    global _catalogue
    current = _catalogue
    if current is not None and time.monotonic() - current.read_at < CATALOGUE_MAX_AGE:
        return current
    with _catalogue_lock:
        current = _catalogue
        if current is None or time.monotonic() - current.read_at >= CATALOGUE_MAX_AGE:
            current = _catalogue = _Catalogue()
        return current


def forget_catalogue(*args: Any, **kwargs: Any) -> None:
    """Read the catalogue again on the next search (a ``Service`` signal receiver)."""
    global _catalogue
    _catalogue = None


class MarketplaceServices(ServiceInfoProvider):
    """Quotes the marketplace's services (price in BRL, unit, availability, link) to Sophie."""

    def search(self, query: str, *, language: str, limit: int = 3) -> list[ServiceInfo]:
        """The services a question is about, best first (by words in tags, title, category)."""
        words = {w.rstrip("s") for w in _words(query)}
        stems = {_stem(w) for w in words}
        if not stems:
            return []
        # Scored in Python, accent-insensitively, over a snapshot of the catalogue whose words
        # are split once: the demo has a few dozen services. A large site would ask its
        # full-text search (or Sophie's) here instead.
        scored = []
        for listing in catalogue().candidates(stems):
            score = listing.score(words, stems)
            if score:
                service = listing.service
                scored.append((score, service.available, float(service.rating), listing))
        # Stable: equal keys keep the catalogue's order (featured, rating, title).
        scored.sort(key=lambda item: item[:3], reverse=True)
        return [listing.info(language) for *_rest, listing in scored[:limit]]

    def for_object(self, obj: Any) -> ServiceInfo | None:
        """Details of one service (the page the user is on, or a linked knowledge entry)."""
        if not isinstance(obj, Service):
            return None
        return self._info(obj, translation.get_language() or "pt-br")

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
