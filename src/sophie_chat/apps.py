from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SophieChatConfig(AppConfig):
    name = "sophie_chat"
    verbose_name = _("Sophie chat")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks; importing is all it takes.
        from sophie_chat import checks  # noqa: F401
        from sophie_chat.knowledge import signals as knowledge_signals

        knowledge_signals.connect()
