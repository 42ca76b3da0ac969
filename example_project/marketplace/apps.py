from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = _("Marketplace")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from marketplace import chat, knowledge
        from marketplace.models import Service

        # Sophie quotes what the catalogue says: a service's knowledge entries follow its edits.
        post_save.connect(knowledge.on_service_saved, sender=Service, dispatch_uid="mkt_kb_save")
        post_delete.connect(
            knowledge.on_service_deleted, sender=Service, dispatch_uid="mkt_kb_delete"
        )
        # The chat's snapshot of the catalogue is read again after a change made here.
        post_save.connect(chat.forget_catalogue, sender=Service, dispatch_uid="mkt_chat_save")
        post_delete.connect(chat.forget_catalogue, sender=Service, dispatch_uid="mkt_chat_delete")
