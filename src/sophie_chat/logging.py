"""Logging helpers. The library only asks structlog for loggers; it never configures it.

Personal data that users type into a chat (pt-BR: CPF, CNPJ; anywhere: e-mail addresses and phone
numbers) must not reach the logs. :func:`mask_pii` replaces it with placeholders; the library
calls it itself wherever it logs user-derived text, and sites add :func:`mask_pii_processor` to
their structlog configuration (or :class:`MaskPIIFilter` to stdlib logging handlers) to cover
everything else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

CPF = "[cpf]"
CNPJ = "[cnpj]"
EMAIL = "[email]"
PHONE = "[phone]"

_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# 12.345.678/0001-95 or 14 bare digits.
_CNPJ_RE = re.compile(r"(?<![\d/.-])\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}(?![\d/-])")
# 123.456.789-09 (bare 11-digit runs are handled with the phones, see _eleven_digits).
_CPF_RE = re.compile(r"(?<![\d.])\d{3}\.\d{3}\.\d{3}-?\d{2}(?![\d-])|(?<![\d.])\d{9}-\d{2}(?!\d)")
# +55 (11) 91234-5678, (11) 1234-5678, 11 91234 5678, +1 415 555 2671, +44 20 7946 0958 ...
_INTL_PHONE_RE = re.compile(r"\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}(?!\d)")
_BR_PHONE_RE = re.compile(
    r"(?<![\d+])(?:\(\d{2}\)\s?|\d{2}[\s.-])9?\d{4}[\s.-]?\d{4}(?!\d)"
    r"|(?<![\d-])9\d{4}-\d{4}(?!\d)"
)
_ELEVEN_DIGITS_RE = re.compile(r"(?<![\d.+-])\d{11}(?![\d-])")
# Every pattern needs a digit or an "@": most chat text has neither and is returned at once.
_MAYBE_PII_RE = re.compile(r"[\d@]")


def is_valid_cpf(digits: str) -> bool:
    """True when ``digits`` (11 digits) carry valid CPF check digits."""
    if len(digits) != 11 or not digits.isdigit() or digits == digits[0] * 11:
        return False
    for length in (9, 10):
        total = sum(
            int(d) * w for d, w in zip(digits[:length], range(length + 1, 1, -1), strict=True)
        )
        check = (total * 10) % 11 % 10
        if check != int(digits[length]):
            return False
    return True


def _eleven_digits(match: re.Match[str]) -> str:
    # 11 bare digits are a CPF or a mobile number with area code; both are masked.
    return CPF if is_valid_cpf(match.group()) else PHONE


def mask_pii(text: str) -> str:
    """Replace CPFs, CNPJs, e-mail addresses and phone numbers in ``text`` with placeholders.

    >>> mask_pii("CPF 123.456.789-09, tel +55 (11) 91234-5678, ana@example.com")
    'CPF [cpf], tel [phone], [email]'
    """
    if not text or not _MAYBE_PII_RE.search(text):
        return text
    text = _EMAIL_RE.sub(EMAIL, text)
    text = _CNPJ_RE.sub(CNPJ, text)
    text = _CPF_RE.sub(CPF, text)
    text = _INTL_PHONE_RE.sub(PHONE, text)
    text = _ELEVEN_DIGITS_RE.sub(_eleven_digits, text)
    return _BR_PHONE_RE.sub(PHONE, text)


def mask_value(value: Any, _depth: int = 0) -> Any:
    """:func:`mask_pii` applied to strings inside ``value`` (dicts, lists and tuples too)."""
    if isinstance(value, str):
        return mask_pii(value)
    if _depth > 4:
        return value
    if isinstance(value, Mapping):
        return {k: mask_value(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_value(v, _depth + 1) for v in value)
    return value


def mask_pii_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor masking personal data in every value of the event.

    Put it before the renderer::

        structlog.configure(processors=[..., sophie_chat.logging.mask_pii_processor,
                                        structlog.processors.JSONRenderer()])
    """
    for key, value in event_dict.items():
        event_dict[key] = mask_value(value)
    return event_dict


class MaskPIIFilter(logging.Filter):
    """A stdlib logging filter that masks personal data in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_pii(record.getMessage())
        record.args = None
        return True


def get_logger(name: str) -> Any:
    """A structlog logger for ``name``; the site's structlog configuration decides the output."""
    return structlog.get_logger(name)
