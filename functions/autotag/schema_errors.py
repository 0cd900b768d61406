"""One short line for a JSON Schema violation in an event or a sweep payload (pure).

jsonschema's own message repeats the offending value whole: a batch of 101 records, or a 100 KB key, would
fill the error FC records and the line a person reads. Here a count says what is wrong with a list's or a
string's length, and any other value is shown cut short; the wording is otherwise jsonschema's."""

from __future__ import annotations

from typing import Any

SHOWN_CHARACTERS = 60  # of a value's repr, in a message


def shown(value: Any) -> str:
    """The value's repr, cut to SHOWN_CHARACTERS with an ellipsis."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


def _count(amount: int, one: str, many: str) -> str:
    return f"{amount} {one if amount == 1 else many}"


def describe(error: Any) -> str:
    """What a jsonschema ValidationError says is wrong, without repeating a long value."""
    validator, bound, instance = error.validator, error.validator_value, error.instance
    if validator == "maxItems" and isinstance(instance, list):
        return f"{_count(len(instance), 'entry', 'entries')}; at most {bound}"
    if validator == "maxLength" and isinstance(instance, str):
        return f"{_count(len(instance), 'character', 'characters')}; at most {bound}"
    if validator == "maxProperties" and isinstance(instance, dict):
        return f"{_count(len(instance), 'field', 'fields')}; at most {bound}"
    message = str(error.message)
    whole = repr(instance)
    if len(whole) > SHOWN_CHARACTERS:
        message = message.replace(whole, shown(instance))
    return message if len(message) <= 200 else message[:199] + "…"
