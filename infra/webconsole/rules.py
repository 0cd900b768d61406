"""The rules the console plans with: those the upload function runs with (its AUTOTAG_RULES and
AUTOTAG_RECORD_SECRET, as `autotag local up` gives them), read as the function reads them: the shipped
rules, a JSON file, or `oss://bucket/key` through oss2, kept and revalidated as the function keeps them."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from autotag.handlers.rules_source import fetch_from
from autotag.rules import RuleSet, load_rules
from autotag.rules.remote import RulesCache, parse_location
from autotag.settings import DEFAULT_RULES

MAX_RULES_BYTES = 256 * 1024


class RulesInForce:
    """Calling it gives the rules now; a bad rules file raises the loader's RulesError, worded by it."""

    def __init__(self, location: str, record_secrets: tuple[str, ...], bucket: Callable[[str], Any]) -> None:
        self.location = location or DEFAULT_RULES
        self.record_secrets = record_secrets
        self._bucket = bucket
        self._remote = parse_location(self.location)
        self._cache = RulesCache(self._remote, record_secrets) if self._remote else None

    def where(self) -> str:
        """Where the rules in force come from, in words."""
        if self._remote is not None:
            return f"{self.location} (OSS, read as the functions read it)"
        if self.location == DEFAULT_RULES:
            return "the rules shipped with the functions (autotag/rules/default.json)"
        return f"the file {self.location}"

    def text(self) -> str:
        """The rules document in force, as text (for the playground to start from)."""
        if self._remote is not None:
            answer = self._bucket(self._remote.bucket).get_object(self._remote.key)
            return bytes(answer.read(MAX_RULES_BYTES)).decode("utf-8", "replace")
        path = self.location
        if path == DEFAULT_RULES:
            path = str(resources.files("autotag").joinpath("rules/default.json"))
        return Path(path).read_text(encoding="utf-8", errors="replace")[:MAX_RULES_BYTES]

    def __call__(self) -> RuleSet:
        if self._remote is not None and self._cache is not None:
            return self._cache.get(fetch_from(self._bucket(self._remote.bucket), self._remote))
        path = self.location
        if path == DEFAULT_RULES:
            path = str(resources.files("autotag").joinpath("rules/default.json"))
        return load_rules(path, self.record_secrets)
