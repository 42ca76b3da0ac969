"""When should a human take over? Decided on the server, once per turn.

:func:`decide` looks at the user's message, its intent and a little state of the session and
returns ``{"reason": ..., "contacts": SUPPORT_CONTACT}`` or ``None``. The conversation core puts
the result on ``assistant.done`` as the structured ``escalation`` field (never a magic string in
the text) and in the assistant message's metadata;
:func:`sophie_chat.analytics.recorder.record_turn` flags the session.

Signals, strongest first:

``human_request``    intent ``human_request`` or a phrase such as "falar com atendente".
``frustration``      a word or phrase of the built-in pt-BR/English lexicon or of
                     ``CHAT_CONFIG["FRUSTRATION_WORDS"]``.
``complaint``        intent ``complaint`` together with two negative words.
``repeated_fallback`` ``state["consecutive_fallbacks"] >= ESCALATION_FALLBACK_THRESHOLD``.
``repeated_question`` the last three user messages say the same thing (token Jaccard >= 0.6).

All matching is accent- and case-insensitive, on whole words.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from sophie_chat.conf import get_config

REASONS = ("human_request", "frustration", "complaint", "repeated_fallback", "repeated_question")
SIMILARITY_THRESHOLD = 0.6
REPEAT_WINDOW = 3

HUMAN_REQUEST_PHRASES = (
    # pt-BR
    "falar com atendente",
    "falar com um atendente",
    "falar com uma atendente",
    "falar com o atendente",
    "falar com alguem",
    "falar com uma pessoa",
    "falar com um humano",
    "falar com humano",
    "falar com o suporte",
    "falar com suporte",
    "quero um atendente",
    "quero uma pessoa",
    "quero um humano",
    "atendente humano",
    "atendimento humano",
    "pessoa de verdade",
    "pessoa real",
    "me passa para um atendente",
    "chamar um atendente",
    # English
    "talk to a person",
    "talk to a human",
    "talk to someone",
    "talk to an agent",
    "speak to a person",
    "speak to a human",
    "speak to someone",
    "speak with a human",
    "speak with someone",
    "real person",
    "human agent",
    "live agent",
    "customer service representative",
    "i want a human",
)

FRUSTRATION_PHRASES = (
    # pt-BR (written without accents: the text is normalised the same way)
    "absurdo",
    "ridiculo",
    "pessimo",
    "pessima",
    "horrivel",
    "inutil",
    "nao resolve",
    "nao resolveu",
    "nao ajuda",
    "nao ajudou",
    "nao adianta",
    "que raiva",
    "que droga",
    "palhacada",
    "irritado",
    "irritada",
    "cansado disso",
    "cansada disso",
    "porcaria",
    "lixo",
    "nao aguento mais",
    "descaso",
    "ja falei",
    "ja disse",
    "voce nao entende",
    "nao entendeu nada",
    "nada funciona",
    "nunca funciona",
    "perda de tempo",
    "inaceitavel",
    "vergonha",
    "estou furioso",
    "estou furiosa",
    # English
    "useless",
    "ridiculous",
    "terrible",
    "awful",
    "frustrated",
    "frustrating",
    "annoyed",
    "angry",
    "this is a joke",
    "waste of time",
    "not helpful",
    "doesnt help",
    "does not help",
    "you dont understand",
    "you do not understand",
    "worst",
    "fed up",
    "sick of",
    "nothing works",
    "i already said",
    "i already told you",
    "unacceptable",
    "pathetic",
)

NEGATIVE_WORDS = (
    # pt-BR
    "nao",
    "nunca",
    "ruim",
    "problema",
    "errado",
    "errada",
    "atraso",
    "atrasado",
    "atrasou",
    "cobrado",
    "cobranca",
    "quebrou",
    "estragou",
    "sumiu",
    "faltou",
    "reclamar",
    "reclamacao",
    "mal",
    "pior",
    # English
    "not",
    "never",
    "bad",
    "wrong",
    "late",
    "charged",
    "broken",
    "damaged",
    "missing",
    "didnt",
    "dont",
    "complain",
    "complaint",
    "poor",
)

# Dropped before comparing questions: they carry no topic.
_STOP_TEXT = (
    "a o as os um uma uns umas de do da dos das no na nos nas em para pra por com como que e "
    "eu meu minha me voce se isso esse essa este esta ja the an of to in on for with how do does "
    "i my me you is are it can what this that and or please por favor"
)
_STOP_WORDS = frozenset(_STOP_TEXT.split())

_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalize(text: str) -> str:
    """Lower-case, strip accents and punctuation: ``"Não, é PÉSSIMO!"`` -> ``"nao e pessimo"``."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # Apostrophes vanish ("don't" -> "dont") rather than split the word.
    ascii_only = ascii_only.replace("'", "").replace("\u2019", "")
    return _NON_WORD.sub(" ", ascii_only).strip()


def _contains_phrase(normalized: str, phrases: tuple[str, ...] | list[str]) -> bool:
    padded = f" {normalized} "
    return any(f" {p} " in padded for p in phrases if p)


def _count_phrases(normalized: str, phrases: tuple[str, ...]) -> int:
    padded = f" {normalized} "
    return sum(1 for p in phrases if f" {p} " in padded)


@lru_cache(maxsize=32)
def _normalized_extra(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n for n in (normalize(w) for w in words) if n)


def _frustration_phrases() -> tuple[str, ...]:
    extra = get_config()["FRUSTRATION_WORDS"] or ()
    return FRUSTRATION_PHRASES + _normalized_extra(tuple(str(w) for w in extra))


def _topic_tokens(text: str) -> frozenset[str]:
    # A five-letter prefix is a crude stemmer that is good enough for rephrasings:
    # "cancelo", "cancelar" and "cancelamento" all become "cance".
    return frozenset(t[:5] for t in normalize(text).split() if t not in _STOP_WORDS)


def jaccard(a: str, b: str) -> float:
    """Similarity of two texts' topic words, 0.0 to 1.0."""
    ta, tb = _topic_tokens(a), _topic_tokens(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


def is_repeated_question(texts: list[str]) -> bool:
    """True when the last three texts are rephrasings of one question."""
    last = texts[-REPEAT_WINDOW:]
    if len(last) < REPEAT_WINDOW:
        return False
    # Greetings and one-word replies ("oi", "ok") repeat without meaning frustration.
    if any(len(_topic_tokens(t)) < 2 for t in last):
        return False
    pairs = [(last[i], last[j]) for i in range(len(last)) for j in range(i + 1, len(last))]
    return sum(jaccard(a, b) for a, b in pairs) / len(pairs) >= SIMILARITY_THRESHOLD


def reason_for(text: str, intent: str, state: dict[str, Any]) -> str | None:
    """The escalation reason for this turn, or None. See the module docstring for the order."""
    config = get_config()
    normalized = normalize(text)
    if intent == "human_request" or _contains_phrase(normalized, HUMAN_REQUEST_PHRASES):
        return "human_request"
    if _contains_phrase(normalized, _frustration_phrases()):
        return "frustration"
    # Two negative words, not one: "my order is a bit late, is that normal?" deserves an answer
    # first; "the provider did not show up and I was charged" deserves a person.
    if intent == "complaint" and _count_phrases(normalized, NEGATIVE_WORDS) >= 2:
        return "complaint"
    threshold = int(config["ESCALATION_FALLBACK_THRESHOLD"])
    if threshold > 0 and int(state.get("consecutive_fallbacks") or 0) >= threshold:
        return "repeated_fallback"
    recent = [str(t) for t in state.get("recent_user_texts") or []]
    # The core may or may not include the current message; count it exactly once.
    if not recent or recent[-1] != text:
        recent.append(text)
    if is_repeated_question(recent):
        return "repeated_question"
    return None


def decide(text: str, intent: str, state: dict[str, Any]) -> dict[str, Any] | None:
    """Return ``{"reason": ..., "contacts": {...}}`` when a human should take over, else None.

    ``state``: ``{"consecutive_fallbacks": int, "recent_user_texts": [str], "reply_source": str}``.
    """
    reason = reason_for(text, intent, state)
    if reason is None:
        return None
    return {"reason": reason, "contacts": dict(get_config()["SUPPORT_CONTACT"])}
