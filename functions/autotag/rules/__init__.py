"""Declarative tagging rules: a JSON Schema-checked file compiled once per instance into pure predicates
and value sources (`load_rules`), evaluated against an object's facts (`derive_tags`)."""

from .engine import Derivation, DerivedTag, RuleSet, derive_tags
from .loader import RulesError, load_rules, parse_rules, rules_from_bytes

__all__ = [
    "Derivation",
    "DerivedTag",
    "RuleSet",
    "RulesError",
    "derive_tags",
    "load_rules",
    "parse_rules",
    "rules_from_bytes",
]
