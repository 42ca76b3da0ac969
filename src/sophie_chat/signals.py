"""Signals that sites can connect to.

``escalated``: sent after the transaction of a turn that escalated to a human commits.
Arguments: ``sender`` (the ``ChatSession`` class), ``session_id`` (str), ``reason`` (one of
``sophie_chat.conversation.escalation.REASONS``), ``escalation`` (the dict sent to the widget).
Receivers run in the worker thread that stored the turn: keep them quick, or hand work off.
"""

from __future__ import annotations

from django.dispatch import Signal

escalated = Signal()
