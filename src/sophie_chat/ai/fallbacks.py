"""Predefined answers (pt-BR and English) and the short notes shown in reduced mode.

They answer common intents when the knowledge base has nothing better, and back the offline
answerer when the AI is unavailable. Texts are plain markdown; links are relative or come from
``SUPPORT_CONTACT``, never from the user.
"""

from __future__ import annotations

from typing import Any

from sophie_chat.conf import get_config


def lang_key(language: str | None) -> str:
    """``"en"`` for English variants, ``"pt"`` for everything else (pt-BR first)."""
    return "en" if (language or "").lower().startswith("en") else "pt"


PREDEFINED: dict[str, dict[str, str]] = {
    "greeting": {
        "pt": "Olá! Eu sou a {name}, a assistente virtual do site. Posso ajudar você a encontrar "
        "e contratar um serviço, tirar dúvidas sobre pagamentos e cancelamentos ou explicar como "
        "se tornar um prestador. Como posso ajudar?",
        "en": "Hi! I'm {name}, the site's virtual assistant. I can help you find and hire a "
        "service, answer questions about payments and cancellations, or explain how to become a "
        "service provider. How can I help?",
    },
    "hire": {
        "pt": "Para contratar um serviço:\n\n1. Busque o serviço que você precisa.\n"
        "2. Compare os profissionais pelas avaliações, preços e disponibilidade.\n"
        "3. Escolha data e horário e confirme o pedido.\n"
        "4. O pagamento fica protegido até o serviço ser concluído.",
        "en": "To hire a service:\n\n1. Search for the service you need.\n"
        "2. Compare providers by reviews, prices and availability.\n"
        "3. Pick a date and time and confirm the order.\n"
        "4. Your payment is held safely until the service is done.",
    },
    "become_provider": {
        "pt": "Para se tornar um prestador:\n\n1. Crie sua conta e escolha o perfil de "
        "prestador.\n2. Complete seu perfil com os serviços que oferece, a região e os preços.\n"
        "3. Envie os documentos pedidos para verificação.\n"
        "4. Depois de aprovado, você começa a receber pedidos.",
        "en": "To become a service provider:\n\n1. Create your account and choose the provider "
        "profile.\n2. Fill in your profile with the services you offer, your area and prices.\n"
        "3. Send the requested documents for verification.\n"
        "4. Once approved, you start receiving requests.",
    },
    "payments": {
        "pt": "Os preços variam conforme o serviço, a região e o profissional; você vê o valor "
        "antes de confirmar. Aceitamos cartão de crédito, Pix e boleto. O pagamento fica retido "
        "com segurança e só é liberado ao prestador depois que o serviço é concluído.",
        "en": "Prices depend on the service, the area and the provider; you see the price before "
        "you confirm. We accept credit cards, Pix and boleto. Your payment is held safely and "
        "only released to the provider once the service is done.",
    },
    "cancellation": {
        "pt": "Você pode cancelar um pedido na página **Meus pedidos**. Cancelamentos feitos com "
        "antecedência costumam ter reembolso integral; perto do horário marcado pode haver taxa, "
        "conforme a política de cancelamento.",
        "en": "You can cancel an order from the **My orders** page. Cancellations made well in "
        "advance are usually fully refunded; close to the scheduled time a fee may apply, as "
        "described in the cancellation policy.",
    },
    "human": {
        "pt": "Claro! Você pode falar com a nossa equipe de atendimento.",
        "en": "Of course! You can talk to our support team.",
    },
}

# Intent (see conversation.intents) -> predefined answer.
INTENT_ANSWERS = {
    "greeting": "greeting",
    "service_inquiry": "hire",
    "provider_questions": "become_provider",
    "pricing": "payments",
    "human_request": "human",
}
_CANCEL_WORDS = ("cancel", "reembols", "estorno", "refund", "desist")

GENERIC = {
    "pt": "Não encontrei uma resposta exata para isso na nossa base de ajuda. Posso ajudar com:\n\n"
    "- como contratar um serviço\n- preços e pagamentos\n- cancelamentos e reembolsos\n"
    "- como se tornar um prestador\n\nTente reformular a pergunta ou escolha um desses assuntos.",
    "en": "I couldn't find an exact answer to that in our help base. I can help with:\n\n"
    "- how to hire a service\n- prices and payments\n- cancellations and refunds\n"
    "- how to become a service provider\n\nTry rephrasing your question or pick one of these "
    "topics.",
}

NOTICE = {
    "pt": "A assistente está em modo reduzido no momento: esta resposta veio da nossa base de "
    "ajuda.",
    "en": "The assistant is in reduced mode right now: this answer comes from our help base.",
}
BUDGET_NOTICE = {
    "pt": "Você atingiu o limite diário de respostas da assistente; esta resposta veio da "
    "nossa base de ajuda.",
    "en": "You've reached today's limit of assistant answers; this answer comes from our help "
    "base.",
}
# Between a partial AI answer cut off mid-stream and the fallback that completes it.
SEPARATOR = "\n\n---\n\n"

LEAD = {
    "pt": "Encontrei isto sobre **{title}**:",
    "en": "Here's what I found about **{title}**:",
}
MORE = {"pt": "Saiba mais: {link}", "en": "Learn more: {link}"}
SEE_ALSO = {"pt": "Veja também: {links}", "en": "See also: {links}"}
CONTACT_LINES = {
    "pt": {
        "email": "E-mail: {v}",
        "phone": "Telefone: {v}",
        "whatsapp": "WhatsApp: {v}",
        "hours": "Horário: {v}",
        "url": "Central de ajuda: {v}",
    },
    "en": {
        "email": "E-mail: {v}",
        "phone": "Phone: {v}",
        "whatsapp": "WhatsApp: {v}",
        "hours": "Hours: {v}",
        "url": "Help centre: {v}",
    },
}


def contact_block(language: str | None, contacts: dict[str, Any] | None = None) -> str:
    """Markdown lines with the configured support contacts, or "" when none is set."""
    lk = lang_key(language)
    contacts = contacts if contacts is not None else get_config()["SUPPORT_CONTACT"]
    lines = []
    for field, template in CONTACT_LINES[lk].items():
        value = str(contacts.get(field) or "").strip()
        if not value:
            continue
        if field == "email":
            value = f"[{value}](mailto:{value})"
        elif field == "whatsapp" and value.lower().startswith(("https://", "http://")):
            value = f"[{value}]({value})"
        elif field == "whatsapp":
            # A bare number becomes a click-to-chat link; tel: would dial, not open WhatsApp.
            digits = "".join(ch for ch in value if ch.isdigit())
            value = f"[{value}](https://wa.me/{digits})" if digits else value
        elif field == "phone":
            digits = "".join(ch for ch in value if ch.isdigit() or ch == "+")
            value = f"[{value}](tel:{digits})" if digits else value
        elif field == "url":
            value = f"[{value}]({value})"
        lines.append("- " + template.format(v=value))
    return "\n".join(lines)


def predefined_key(text: str, intent: str) -> str | None:
    """The predefined answer for a message, if one fits its intent (or it asks to cancel)."""
    lowered = text.lower()
    if intent in ("account", "complaint", "other", "service_inquiry") and any(
        w in lowered for w in _CANCEL_WORDS
    ):
        return "cancellation"
    return INTENT_ANSWERS.get(intent)


def predefined_answer(key: str, language: str | None) -> str:
    """The predefined answer ``key`` in the user's language, with contacts for "human"."""
    lk = lang_key(language)
    answer = PREDEFINED[key][lk].format(name=get_config()["ASSISTANT_NAME"])
    if key == "human":
        contacts = contact_block(language)
        if contacts:
            answer += "\n\n" + contacts
    return answer


def notice(language: str | None, kind: str = "") -> str:
    """The short note shown with a degraded answer."""
    table = BUDGET_NOTICE if kind == "budget" else NOTICE
    return table[lang_key(language)]
