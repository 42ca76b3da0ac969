from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from django.test import override_settings

from sophie_chat.conversation.escalation import REASONS, decide, jaccard, normalize

DATA = json.loads((Path(__file__).parent / "data" / "escalation.json").read_text("utf-8"))
CONTACT = {
    "email": "ajuda@example.com",
    "phone": "0800 000 0000",
    "whatsapp": "",
    "hours": "",
    "url": "",
}


def _decide(row: dict) -> dict | None:
    return decide(row["text"], row["intent"], row.get("state", {}))


@override_settings(CHAT_CONFIG={"SUPPORT_CONTACT": CONTACT})
def test_labelled_messages(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(DATA) >= 40
    assert {r["lang"] for r in DATA} == {"pt-br", "en"}
    outcomes: Counter[str] = Counter()
    wrong = []
    for row in DATA:
        result = _decide(row)
        got = result["reason"] if result else None
        if row["expected"] is None:
            outcomes["neutral_ok" if got is None else "false_escalation"] += 1
        else:
            outcomes["hit" if got == row["expected"] else "miss"] += 1
        if got != row["expected"]:
            wrong.append((row["text"], row["expected"], got))
    escalating = sum(r["expected"] is not None for r in DATA)
    with capsys.disabled():
        print(
            f"\nescalation: {len(DATA)} labelled messages; {outcomes['hit']}/{escalating} "
            f"escalations found with the right reason, {outcomes['false_escalation']} false "
            f"escalations on {len(DATA) - escalating} neutral messages"
        )
    assert outcomes["false_escalation"] == 0, wrong
    assert wrong == []


@override_settings(CHAT_CONFIG={"SUPPORT_CONTACT": CONTACT})
def test_result_is_structured_with_contacts() -> None:
    result = decide("quero falar com atendente", "other", {})
    assert result == {"reason": "human_request", "contacts": CONTACT}
    assert result["reason"] in REASONS


def test_accents_and_case_do_not_matter() -> None:
    assert normalize("Não, é PÉSSIMO!") == "nao e pessimo"
    assert decide("PÉSSIMO", "other", {})["reason"] == "frustration"
    assert decide("pessimo", "other", {})["reason"] == "frustration"


def test_words_match_whole_words_only() -> None:
    # "lixo" is in the lexicon; "lixeira" (a bin someone wants cleaned) is not frustration.
    assert decide("lixo", "other", {}) is not None
    assert decide("preciso limpar a lixeira", "other", {}) is None


def test_site_words_extend_the_lexicon() -> None:
    assert decide("isso é uma enrolação", "other", {}) is None
    with override_settings(CHAT_CONFIG={"FRUSTRATION_WORDS": ["Enrolação"]}):
        assert decide("isso é uma enrolação", "other", {})["reason"] == "frustration"


def test_fallback_threshold_comes_from_settings() -> None:
    state = {"consecutive_fallbacks": 2}
    assert decide("e o seguro?", "other", state)["reason"] == "repeated_fallback"
    with override_settings(CHAT_CONFIG={"ESCALATION_FALLBACK_THRESHOLD": 3}):
        assert decide("e o seguro?", "other", state) is None
    with override_settings(CHAT_CONFIG={"ESCALATION_FALLBACK_THRESHOLD": 0}):
        assert decide("e o seguro?", "other", {"consecutive_fallbacks": 9}) is None


def test_complaint_needs_two_negative_words() -> None:
    assert decide("quero registrar uma reclamação", "other", {}) is None
    assert decide("o serviço foi ótimo, quero elogiar", "complaint", {}) is None
    assert decide("o serviço não foi feito", "complaint", {}) is None
    assert decide("o serviço não foi feito e fui cobrado", "complaint", {})["reason"] == "complaint"


def test_repeated_question_counts_the_current_message_once() -> None:
    texts = ["como cancelo o pedido?", "como cancelar pedido"]
    # Whether or not the core already appended the current message, the answer is the same.
    assert decide("cancelar o pedido como", "other", {"recent_user_texts": texts})
    assert decide(
        "cancelar o pedido como", "other", {"recent_user_texts": [*texts, "cancelar o pedido como"]}
    )
    assert decide("cancelar o pedido como", "other", {"recent_user_texts": texts[:1]}) is None


def test_jaccard() -> None:
    assert jaccard("como cancelo o pedido", "como cancelar o pedido") == 1.0
    assert jaccard("quanto custa faxina", "horário de atendimento") == 0.0
    assert jaccard("", "algo") == 0.0


def test_with_the_real_intent_classifier_neutral_messages_never_escalate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sophie_chat.conversation.intents import classify

    false, found = [], 0
    for row in DATA:
        result = decide(row["text"], classify(row["text"], row["lang"]), row.get("state", {}))
        if row["expected"] is None and result is not None:
            false.append((row["text"], result["reason"]))
        found += row["expected"] is not None and result is not None
    escalating = sum(r["expected"] is not None for r in DATA)
    with capsys.disabled():
        print(f"\nescalation with classify(): {found}/{escalating} found, {len(false)} false")
    assert false == []
    assert found >= escalating - 2
