"""``manage.py load_demo``: the demo's users, categories, services, bookings and knowledge base.

Idempotent: every object is looked up by a natural key (username, slug, slug + language) and
updated in place, so running it again refreshes the demo and never duplicates anything.
"""

from __future__ import annotations

import datetime
from io import StringIO
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from marketplace import demo_data, knowledge
from marketplace.models import Booking, Category, Profile, Service
from sophie_chat.analytics.demo import build_demo_chats, delete_demo_chats
from sophie_chat.models import KnowledgeBaseEntry

KB_COMMAND = "sophie_chat_load_kb"
# example_project/knowledge/, next to the app (this file is marketplace/management/commands/).
KNOWLEDGE_DIR = Path(__file__).resolve().parents[3] / "knowledge"


class Command(BaseCommand):
    help = "Load the example marketplace's demo data and knowledge base (safe to run again)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--knowledge-dir",
            default=str(KNOWLEDGE_DIR),
            help="Folder of knowledge base YAML files (default: example_project/knowledge/).",
        )
        parser.add_argument(
            "--chats",
            type=int,
            default=150,
            help="Past demo chats for the dashboard and weekly report (default 150; 0: none).",
        )

    kb_report = "not loaded"

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            users = self._users()
            categories = self._categories()
            services = self._services(categories, users)
            self._bookings(users["cliente"], services)
        kb_files = self._knowledge_files(Path(options["knowledge_dir"]))
        # Replaced, not added to, so that running the command again keeps the same figures.
        delete_demo_chats()
        if options["chats"]:
            chats = build_demo_chats(sessions=options["chats"])
            self.stdout.write(
                f"Demo chats: {chats['sessions']} sessions, {chats['messages']} messages"
            )
        # Saving each service above also wrote its knowledge entries (marketplace.knowledge).
        generated = len(services) * len(knowledge.LANGUAGES)
        self._summary(generated, kb_files)

    # --- marketplace data ---------------------------------------------------------------------

    def _users(self) -> dict[str, Any]:
        user_model = get_user_model()
        users = {}
        for row in demo_data.USERS:
            user, _ = user_model.objects.get_or_create(username=row["username"])
            user.first_name = row["first_name"]
            user.last_name = row["last_name"]
            user.email = f"{row['username']}@example.com"
            user.is_staff = user.is_superuser = bool(row.get("staff"))
            # Reset every run, so the documented demo passwords always work.
            user.set_password(row["password"])
            user.save()
            Profile.objects.update_or_create(
                user=user,
                defaults={
                    "kind": row["kind"],
                    "city": row["city"],
                    "phone": row["phone"],
                    "bio": row.get("bio", ""),
                },
            )
            users[row["username"]] = user
        return users

    def _categories(self) -> dict[str, Category]:
        categories = {}
        for slug, name, icon, description in demo_data.CATEGORIES:
            category, _ = Category.objects.update_or_create(
                slug=slug, defaults={"name": name, "icon": icon, "description": description}
            )
            categories[slug] = category
        return categories

    def _services(self, categories: dict[str, Category], users: dict[str, Any]) -> list[Service]:
        services = []
        for row in demo_data.SERVICES:
            fields = {
                key: row[key]
                for key in (
                    "title",
                    "description",
                    "tags",
                    "price",
                    "price_unit",
                    "city",
                    "availability",
                    "rating",
                    "featured",
                    "available",
                )
            }
            fields["category"] = categories[row["category"]]
            fields["provider"] = users[row["provider"]].profile
            service, _ = Service.objects.update_or_create(slug=row["slug"], defaults=fields)
            services.append(service)
        return services

    def _bookings(self, client: Any, services: list[Service]) -> None:
        by_slug = {s.slug: s for s in services}
        today = timezone.localdate()
        for slug, days, status in demo_data.BOOKINGS:
            Booking.objects.update_or_create(
                client=client,
                service=by_slug[slug],
                defaults={"date": today + datetime.timedelta(days=days), "status": status},
            )

    # --- knowledge base -----------------------------------------------------------------------

    def _knowledge_files(self, folder: Path) -> int:
        files = [p for p in folder.rglob("*") if p.suffix in {".yaml", ".yml", ".json"}]
        if KB_COMMAND in get_commands():
            report = StringIO()
            call_command(KB_COMMAND, str(folder), stdout=report)
            self.kb_report = report.getvalue().strip()
        else:
            self.stderr.write(
                f"The {KB_COMMAND} command is not available: knowledge files not loaded."
            )
            return 0
        return len(files)

    def _summary(self, generated: int, kb_files: int) -> None:
        by_language = {
            lang: KnowledgeBaseEntry.objects.filter(language=lang).count()
            for lang in ("pt-br", "en")
        }
        self.stdout.write(
            self.style.SUCCESS(
                "Demo loaded: "
                f"{Category.objects.count()} categories, {Service.objects.count()} services, "
                f"{Profile.objects.filter(kind=Profile.Kind.PROVIDER).count()} providers, "
                f"{Booking.objects.count()} bookings; knowledge base: "
                f"{kb_files} files ({self.kb_report}), {generated} service entries, "
                f"{by_language['pt-br']} entries in pt-br and {by_language['en']} in en."
            )
        )
        self.stdout.write(
            "Log in as cliente/cliente123 (client), prestador/prestador123 (provider) or "
            "admin/admin123 (staff)."
        )
