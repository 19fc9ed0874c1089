"""Redaction of credentials from text that came back from a backend (error messages, answers).

Servers and proxies sometimes echo the request's headers in their error bodies, so an API key can come back in
an error text, and from there reach the `llm_calls` and `events` tables and the terminal. Every result passes
through `Redactor.clean` where it enters the policy, before anything is parsed, logged or printed.

What is removed: the values of the API keys this run uses (read from the environment variables the scenario
names), wherever they appear; any `Bearer <token>`; the value of an `Authorization` header or field; OpenAI-style
`sk-...` keys. Tokens must look like tokens (at least 8 characters without spaces), so ordinary prose ("the bearer
of bad news") is left alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

_PATTERNS = re.compile(
    r"(?P<auth>authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[A-Za-z0-9._~+/=:-]{8,}"
    r"|(?P<bearer>bearer\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|\bsk-[A-Za-z0-9_-]{8,}",
    re.IGNORECASE,
)


def _sub(m: re.Match[str]) -> str:
    prefix = m.group("auth") or m.group("bearer") or ""
    return prefix + REDACTED


class Redactor:
    """Removes `secrets` (exact values) and credential-shaped tokens from text."""

    def __init__(self, secrets: Iterable[str] = ()):
        # Longest first, so a key that contains another is removed whole; short values (a local server's dummy
        # key such as "EMPTY") are not secrets worth mangling text for.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    @classmethod
    def for_models(cls, models: Mapping[str, Any]) -> Redactor:
        """The keys named by the models' `api_key_env` (the ones the backends send), read from the environment."""
        names = {getattr(m, "api_key_env", None) for m in models.values()}
        return cls(os.environ.get(n, "") for n in names if n)

    def clean(self, text: str) -> str:
        if not text:
            return text
        for s in self.secrets:
            if s in text:
                text = text.replace(s, REDACTED)
        return _PATTERNS.sub(_sub, text)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`Redactor(secrets).clean(text)`, for one-off texts."""
    return Redactor(secrets).clean(text)
