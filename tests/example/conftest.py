"""Fixtures of the example marketplace's tests: its URLs and templates, and a small marketplace."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "example_project"


@pytest.fixture(autouse=True)
def example_site(settings: Any) -> None:
    """Serve the marketplace as its own settings do: its URLconf and project templates."""
    settings.ROOT_URLCONF = "example_project.urls"
    engine = dict(settings.TEMPLATES[0])
    engine["DIRS"] = [EXAMPLE_DIR / "templates"]
    settings.TEMPLATES = [engine]
    settings.LOGIN_URL = "login"
    settings.LANGUAGE_CODE = "pt-br"


@pytest.fixture(autouse=True)
def _fresh_catalogue() -> None:
    """The chat's snapshot of the services must not outlive a test's rolled-back rows."""
    from marketplace.chat import forget_catalogue

    forget_catalogue()


@pytest.fixture
def market(db: None, user_factory: Any) -> dict[str, Any]:
    """A small marketplace: a client with a booking, a provider with two services."""
    from marketplace.models import Booking, Category, Profile, Service

    cleaning = Category.objects.create(name="Limpeza", slug="limpeza", icon="🧹")
    client = user_factory(
        username="ana", first_name="Ana", email="ana@example.com", password="pw-ana"
    )
    Profile.objects.create(user=client, kind="client", city="São Paulo", phone="+55 11 91234-5678")
    provider_user = user_factory(
        username="carlos", first_name="Carlos", email="carlos@example.com", password="pw-carlos"
    )
    provider = Profile.objects.create(
        user=provider_user, kind="provider", city="São Paulo", phone="+55 11 97777-4321"
    )
    diarista = Service.objects.create(
        category=cleaning,
        provider=provider,
        title="Diarista: limpeza residencial completa",
        slug="diarista-residencial",
        description="Limpeza completa de casa ou apartamento.",
        tags="diarista, faxina, limpeza, cleaner, cleaning",
        price=Decimal("180.00"),
        price_unit="diaria",
        city="São Paulo",
        availability="Seg a sáb, 8h às 17h",
        featured=True,
    )
    ironing = Service.objects.create(
        category=cleaning,
        provider=provider,
        title="Passadeira de roupas",
        slug="passadeira",
        description="Passo roupas com cuidado.",
        tags="passadeira, passar roupa, ironing",
        price=Decimal("1250.50"),
        price_unit="projeto",
        city="Rio de Janeiro",
        available=False,
    )
    booking = Booking.objects.create(
        client=client,
        service=diarista,
        date=timezone.localdate() + datetime.timedelta(days=3),
        status="confirmed",
    )
    return {
        "client": client,
        "provider": provider_user,
        "category": cleaning,
        "diarista": diarista,
        "ironing": ironing,
        "booking": booking,
    }
