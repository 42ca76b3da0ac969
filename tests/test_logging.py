from __future__ import annotations

import logging

import pytest
import structlog

from sophie_chat.logging import (
    MaskPIIFilter,
    get_logger,
    is_valid_cpf,
    mask_pii,
    mask_pii_processor,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CPF 123.456.789-09 ok", "CPF [cpf] ok"),
        ("cpf 12345678909", "cpf [cpf]"),
        ("cpf 123456789-09", "cpf [cpf]"),
        ("CNPJ 12.345.678/0001-95", "CNPJ [cnpj]"),
        ("cnpj 12345678000195.", "cnpj [cnpj]."),
        ("escreva para ana.silva+x@exemplo.com.br hoje", "escreva para [email] hoje"),
        ("ligue +55 (11) 91234-5678", "ligue [phone]"),
        ("ligue (11) 91234-5678", "ligue [phone]"),
        ("ligue 11 91234-5678", "ligue [phone]"),
        ("zap 11912345678", "zap [phone]"),
        ("cel 91234-5678", "cel [phone]"),
        ("fixo (21) 3456-7890", "fixo [phone]"),
        ("+5511912345678", "[phone]"),
        ("call +1 415 555 2671", "call [phone]"),
        ("call +44 20 7946 0958", "call [phone]"),
    ],
)
def test_personal_data_is_masked(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "R$ 1.234,56 em 12/03/2025 às 14:30",
        "pedido 12345, 3 horas, 150 reais",
        "CEP 01310-100",
        "anos 2024 e 2025",
        "",
    ],
)
def test_ordinary_numbers_are_kept(text: str) -> None:
    assert mask_pii(text) == text


def test_cpf_check_digits() -> None:
    assert is_valid_cpf("12345678909")
    assert not is_valid_cpf("12345678900")
    assert not is_valid_cpf("11111111111")


def test_structlog_processor_masks_every_value() -> None:
    event = {"event": "x", "text": "meu email é a@b.com", "nested": {"phone": "(11) 91234-5678"}}
    out = mask_pii_processor(None, "info", event)
    assert out == {"event": "x", "text": "meu email é [email]", "nested": {"phone": "[phone]"}}


def test_processor_in_a_structlog_pipeline() -> None:
    with structlog.testing.capture_logs(processors=[mask_pii_processor]) as logs:
        get_logger("sophie_chat.test").warning("user_said", text="CPF 123.456.789-09")
    assert logs == [{"event": "user_said", "text": "CPF [cpf]", "log_level": "warning"}]


def test_stdlib_filter(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("sophie_chat.test.stdlib")
    log.addFilter(MaskPIIFilter())
    try:
        with caplog.at_level(logging.INFO, logger="sophie_chat.test.stdlib"):
            log.info("contato %s", "ana@example.com")
    finally:
        log.filters.clear()
    assert caplog.messages == ["contato [email]"]
