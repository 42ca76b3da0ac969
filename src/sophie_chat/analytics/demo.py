"""Plausible chat history for demos, screenshots, benchmarks and tests.

:func:`build_demo_chats` writes sessions, messages and analytics rows with ``bulk_create``: 1,000
sessions and 20,000 messages take a few seconds. Never run it against a production database; the
sessions it makes are marked with ``context["demo"] = True`` so :func:`delete_demo_chats` can
remove them.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from sophie_chat.models import ChatAnalytics, ChatMessage, ChatSession

QUESTIONS: dict[str, list[str]] = {
    "hire_service": [
        "Como faço para contratar um eletricista?",
        "Quero contratar uma diarista para sábado",
        "How do I book a plumber?",
        "Preciso de um pintor para o apartamento",
    ],
    "pricing": [
        "Quanto custa uma faxina de 4 horas?",
        "Qual o preço médio de um encanador?",
        "How much does a cleaning cost?",
    ],
    "cancel": [
        "Como cancelo meu pedido?",
        "Posso cancelar sem pagar multa?",
        "How can I cancel my booking?",
    ],
    "payment": [
        "Quais formas de pagamento vocês aceitam?",
        "Posso pagar com Pix?",
        "Do you accept credit cards?",
    ],
    "provider_signup": [
        "Como me cadastro como prestador?",
        "Quais documentos preciso para ser prestador?",
    ],
    "order_status": [
        "Meu pedido ainda não foi confirmado",
        "O prestador está atrasado, o que faço?",
    ],
    "refund": ["Quando recebo meu reembolso?", "Fui cobrado duas vezes, como peço estorno?"],
    "account": ["Como troco minha senha?", "Como altero meu e-mail?"],
    "complaint": ["O prestador não apareceu e fui cobrado", "O serviço ficou mal feito"],
    "human_request": ["Quero falar com um atendente", "Can I talk to a person?"],
    "greeting": ["Oi, tudo bem?", "Olá!"],
}
WEIGHTS = {
    "hire_service": 18,
    "pricing": 16,
    "cancel": 10,
    "payment": 10,
    "provider_signup": 7,
    "order_status": 9,
    "refund": 7,
    "account": 6,
    "complaint": 2,
    "human_request": 1,
    "greeting": 10,
}
ANSWER = (
    "Claro! Para isso, acesse **Meus pedidos** e siga as instruções. "
    "Se precisar, posso explicar cada passo."
)
FALLBACK = (
    "Desculpe, não encontrei uma resposta segura para isso. Você pode falar com o nosso suporte."
)


def _pick_intent(rng: random.Random) -> str:
    names = list(WEIGHTS)
    return rng.choices(names, weights=[WEIGHTS[n] for n in names])[0]


def build_demo_chats(
    sessions: int = 200,
    messages_per_session: int = 10,
    days: int = 14,
    seed: int = 7,
    batch_size: int = 2000,
) -> dict[str, int]:
    """Create ``sessions`` sessions of ``messages_per_session`` messages over the last ``days``."""
    rng = random.Random(seed)
    now = timezone.now()
    user_types = ["client", "provider", "anonymous"]
    session_rows: list[ChatSession] = []
    message_rows: list[ChatMessage] = []
    analytics_rows: list[ChatAnalytics] = []
    turns = max(1, messages_per_session // 2)
    # A few chats going on right now, so "active now" is not always zero.
    live = max(1, sessions // 150)
    for number in range(sessions):
        if number < live:
            started = now - dt.timedelta(seconds=rng.uniform(120, 600))
        else:
            started = now - dt.timedelta(seconds=rng.uniform(0, days * 86400))
        session = ChatSession(
            id=uuid.uuid4(),
            visitor_key=uuid.uuid4().hex,
            user_type=rng.choices(user_types, weights=[6, 2, 3])[0],
            language=rng.choice(["pt-br", "pt-br", "pt-br", "en"]),
            context={"demo": True},
            created_at=started,
        )
        counters: dict[str, Any] = {"fallback": 0, "ai": 0, "cache": 0}
        at = started
        timing_sum = [0, 0, 0]
        fallbacks_in_a_row = 0
        escalation: dict[str, Any] | None = None
        for turn in range(turns):
            intent = _pick_intent(rng)
            at = min(now, at + dt.timedelta(seconds=rng.uniform(5, 90)))
            message_rows.append(
                ChatMessage(
                    session=session,
                    seq=2 * turn + 1,
                    sender="user",
                    client_id=uuid.uuid4(),
                    content=rng.choice(QUESTIONS[intent]),
                    metadata={"intent": intent},
                    created_at=at,
                )
            )
            source = rng.choices(["ai", "cache", "fallback"], weights=[68, 20, 12])[0]
            if intent == "greeting":
                source = "ai"
            fallbacks_in_a_row = fallbacks_in_a_row + 1 if source == "fallback" else 0
            ttft = 5 if source == "cache" else int(rng.lognormvariate(6.2, 0.35))
            total = ttft + (15 if source == "cache" else int(rng.lognormvariate(7.4, 0.4)))
            wants_human = (
                intent == "human_request"
                or (intent == "complaint" and rng.random() < 0.4)
                or fallbacks_in_a_row >= 2
            )
            if escalation is None and wants_human:
                reason = {"human_request": "human_request", "complaint": "complaint"}.get(
                    intent, "repeated_fallback"
                )
                escalation = {"reason": reason, "contacts": {}}
                reply_escalation: dict[str, Any] | None = escalation
            else:
                reply_escalation = None
            at = min(now, at + dt.timedelta(milliseconds=total))
            message_rows.append(
                ChatMessage(
                    session=session,
                    seq=2 * turn + 2,
                    sender="assistant",
                    content=FALLBACK if source == "fallback" else ANSWER,
                    metadata={
                        "status": "complete",
                        "source": source,
                        "intent": intent,
                        "model": "" if source == "fallback" else "gpt-4o-mini",
                        "tokens_in": 0 if source != "ai" else rng.randint(400, 1500),
                        "tokens_out": 0 if source != "ai" else rng.randint(40, 300),
                        "first_token_ms": ttft,
                        "response_ms": total,
                        "error": "",
                        "escalation": reply_escalation,
                    },
                    created_at=at,
                )
            )
            counters[source] += 1
            timing_sum[0] += ttft
            timing_sum[1] += total
            timing_sum[2] = max(timing_sum[2], total)
        session.last_seq = 2 * turns
        session.last_activity_at = at
        if escalation:
            session.escalated = True
            session.escalation_reason = escalation["reason"]
        if at < now - dt.timedelta(hours=1):
            session.status = rng.choice(["closed", "expired"])
            session.closed_at = at if session.status == "closed" else None
            if rng.random() < 0.45:
                low = escalation is not None or counters["fallback"] > 1
                session.rating = rng.choice([1, 2, 3] if low else [3, 4, 5, 5, 5])
                session.rated_at = at
        session_rows.append(session)
        analytics_rows.append(
            ChatAnalytics(
                session=session,
                user_messages=turns,
                assistant_messages=turns,
                ai_answers=counters["ai"],
                cache_answers=counters["cache"],
                fallback_answers=counters["fallback"],
                total_first_token_ms=timing_sum[0],
                total_response_ms=timing_sum[1],
                max_response_ms=timing_sum[2],
            )
        )
    with transaction.atomic():
        ChatSession.objects.bulk_create(session_rows, batch_size=batch_size)
        ChatMessage.objects.bulk_create(message_rows, batch_size=batch_size)
        ChatAnalytics.objects.bulk_create(analytics_rows, batch_size=batch_size)
    return {"sessions": len(session_rows), "messages": len(message_rows)}


def delete_demo_chats() -> int:
    """Delete the sessions made by :func:`build_demo_chats`; returns how many."""
    _, per_model = ChatSession.objects.filter(context__demo=True).delete()
    return per_model.get(ChatSession._meta.label, 0)
