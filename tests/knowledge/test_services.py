"""Service information: the configured provider first, knowledge base entries as the fallback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType

from sophie_chat.knowledge import services
from sophie_chat.knowledge.loader import LoadReport
from sophie_chat.knowledge.services import (
    ServiceInfo,
    ServiceInfoProvider,
    get_service_info,
    get_service_info_provider,
)
from sophie_chat.models import KnowledgeBaseEntry

pytestmark = pytest.mark.django_db

CLEANER = ServiceInfo(
    title="Diarista Maria",
    description="Limpeza completa.",
    price="R$ 160,00",
    price_value=Decimal("160.00"),
    price_unit="por diária",
    availability="Disponível amanhã",
    url="/servicos/diarista/maria/",
    category="Limpeza",
    extra={"rating": "4.9"},
)


class Services(ServiceInfoProvider):
    calls: list[tuple[str, str, int]] = []

    def search(self, query: str, *, language: str, limit: int = 3) -> list[ServiceInfo]:
        self.calls.append((query, language, limit))
        return [CLEANER] if "diarista" in query else []

    def for_object(self, obj: Any) -> ServiceInfo | None:
        return CLEANER if isinstance(obj, Group) else None


class Broken(ServiceInfoProvider):
    def search(self, query: str, *, language: str, limit: int = 3) -> list[ServiceInfo]:
        raise RuntimeError("site bug")


@pytest.fixture
def provider(settings: Any) -> Iterator[Callable[[str], None]]:
    def use(name: str) -> None:
        settings.CHAT_CONFIG = {
            **settings.CHAT_CONFIG,
            "SERVICE_INFO_PROVIDER": f"{__name__}.{name}",
        }

    services._cached.clear()
    yield use
    services._cached.clear()


def test_provider_is_loaded_at_call_time_and_instantiated_once(
    provider: Callable[[str], None],
) -> None:
    assert get_service_info_provider() is None
    provider("Services")
    first = get_service_info_provider()
    assert isinstance(first, Services)
    assert get_service_info_provider() is first


def test_question_goes_to_the_provider(provider: Callable[[str], None]) -> None:
    provider("Services")
    Services.calls = []
    assert get_service_info("preciso de diarista", language="en", limit=2) == [CLEANER]
    assert Services.calls == [("preciso de diarista", "en", 2)]


def test_object_goes_to_the_provider(provider: Callable[[str], None]) -> None:
    provider("Services")
    assert get_service_info(Group.objects.create(name="x")) == [CLEANER]


def test_without_an_answer_the_service_entries_are_used(
    marketplace_kb: LoadReport, provider: Callable[[str], None]
) -> None:
    fallback = get_service_info("encanador para vazamento", language="pt-br")
    assert fallback[0].title == "Encanador"
    assert fallback[0].url == "/servicos/encanador/"
    assert fallback[0].extra == {"slug": "servico-encanador"}
    assert all(i.category == "service" for i in fallback)
    provider("Services")  # answers nothing about plumbers
    assert get_service_info("encanador", language="pt-br")[0].title == "Encanador"


def test_a_failing_provider_does_not_break_the_turn(
    marketplace_kb: LoadReport, provider: Callable[[str], None]
) -> None:
    provider("Broken")
    assert get_service_info("diarista", language="pt-br")[0].title == "Diarista"


def test_object_fallback_is_the_linked_entry(db: None) -> None:
    group = Group.objects.create(name="Encanadores")
    KnowledgeBaseEntry.objects.create(
        slug="linked",
        title="Encanadores",
        content="Hidráulica.",
        content_type=ContentType.objects.get_for_model(Group),
        object_id=str(group.pk),
    )
    assert [i.title for i in get_service_info(group)] == ["Encanadores"]
    assert get_service_info(Group.objects.create(name="other")) == []
    assert get_service_info(object()) == []


def test_service_info_serialisation() -> None:
    data = CLEANER.as_dict()
    assert data["price_value"] == "160.00"
    assert data["extra"] == {"rating": "4.9"}
    assert CLEANER.as_text() == (
        "Diarista Maria | R$ 160,00 por diária | Disponível amanhã\nLimpeza completa."
    )
    assert ServiceInfo(title="x").as_text() == "x"
