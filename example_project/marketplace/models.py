"""The example marketplace: categories of services, providers' offers, client bookings."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


class Category(models.Model):
    name = models.CharField(_("name"), max_length=80)
    slug = models.SlugField(_("slug"), unique=True)
    description = models.TextField(_("description"), blank=True)
    # An emoji: the demo loads no icon font and no image from the network.
    icon = models.CharField(_("icon"), max_length=8, blank=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("marketplace:category_detail", args=[self.slug])


class Profile(models.Model):
    class Kind(models.TextChoices):
        CLIENT = "client", _("Client")
        PROVIDER = "provider", _("Service provider")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.CLIENT)
    city = models.CharField(_("city"), max_length=80, blank=True)
    # Personal data: shown to the owner only, never handed to the chat (see marketplace.chat).
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    bio = models.TextField(_("about"), blank=True)

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    @property
    def is_provider(self) -> bool:
        return self.kind == self.Kind.PROVIDER


class Service(models.Model):
    class PriceUnit(models.TextChoices):
        HOUR = "hora", _("per hour")
        DAY = "diaria", _("per day")
        VISIT = "visita", _("per visit")
        PROJECT = "projeto", _("per project")

    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="services", verbose_name=_("category")
    )
    provider = models.ForeignKey(
        Profile,
        on_delete=models.CASCADE,
        related_name="services",
        limit_choices_to={"kind": Profile.Kind.PROVIDER},
        verbose_name=_("provider"),
    )
    title = models.CharField(_("title"), max_length=120)
    slug = models.SlugField(_("slug"), unique=True, max_length=120)
    description = models.TextField(_("description"))
    # Words clients use for this service, in both languages ("faxina, limpeza, cleaner"): they
    # make the chat's service search find it however the question is phrased.
    tags = models.CharField(_("search words"), max_length=300, blank=True)
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2)
    price_unit = models.CharField(
        _("price unit"), max_length=16, choices=PriceUnit.choices, default=PriceUnit.HOUR
    )
    city = models.CharField(_("city"), max_length=80)
    available = models.BooleanField(_("taking bookings"), default=True)
    availability = models.CharField(
        _("availability"), max_length=120, blank=True, help_text=_("e.g. Seg a sex, 8h às 18h")
    )
    rating = models.DecimalField(
        _("rating"), max_digits=2, decimal_places=1, default=Decimal("5.0")
    )
    featured = models.BooleanField(_("featured"), default=False)

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["-featured", "-rating", "title"]
        indexes = [models.Index(fields=["city", "available"], name="marketplace_service_city")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("marketplace:service_detail", args=[self.slug])

    @property
    def price_display(self) -> str:
        return format_brl(self.price)


class Booking(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        CONFIRMED = "confirmed", _("Confirmed")
        DONE = "done", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    client = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="bookings",
        verbose_name=_("client"),
    )
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, related_name="bookings", verbose_name=_("service")
    )
    date = models.DateField(_("date"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.REQUESTED
    )
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("booking")
        verbose_name_plural = _("bookings")
        ordering = ["-date", "-created_at"]

    def __str__(self) -> str:
        return f"{self.service} - {self.date:%d/%m/%Y}"


def format_brl(amount: Decimal) -> str:
    """Format an amount the Brazilian way, whatever the active language: ``R$ 1.250,00``."""
    whole, cents = f"{amount:,.2f}".split(".")
    return f"R$ {whole.replace(',', '.')},{cents}"
