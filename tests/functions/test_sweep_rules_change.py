"""The pass after a change of rules, as pure pieces: which pass a run takes (selected, full or pruning),
what a selected pass lists and from where it resumes, and the completed clock it leaves behind."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotag.sweep.checkpoint import (
    FULL,
    PRUNE,
    SELECTED,
    Checkpoint,
    CheckpointError,
    Position,
    Scope,
    SweepPass,
    checkpoint_from_document,
    completed,
    decode_checkpoint,
    encode_checkpoint,
    next_pass,
    widened,
)
from autotag.sweep.selection import listing_starts, selected_prefixes

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
SCOPE = Scope("b")
DONE_P = Checkpoint(SCOPE, T0, "P", None, "P")  # a pass with rules P completed at T0


def test_a_change_of_rules_starts_the_pass_the_setting_names() -> None:
    selected = next_pass(DONE_P, "N", T0 + DAY, on_rules_change=SELECTED)
    assert selected is not None
    assert (selected.mode, selected.retag, selected.previous, selected.since) == ("selected", True, "P", T0)
    full = next_pass(DONE_P, "N", T0 + DAY, on_rules_change=FULL)
    assert full is not None and (full.mode, full.retag, full.previous) == ("full", True, None)
    pruning = next_pass(DONE_P, "N", T0 + DAY, on_rules_change=PRUNE)
    assert pruning is not None and (pruning.mode, pruning.retag) == ("full", False)
    # The same rules: incremental, whatever the setting.
    for setting in (SELECTED, FULL, PRUNE):
        same = next_pass(DONE_P, "P", T0 + DAY, on_rules_change=setting)
        assert same is not None and (same.mode, same.retag, same.since) == ("incremental", False, T0)


def test_a_first_pass_and_a_payloads_full_prune_as_before() -> None:
    first = next_pass(Checkpoint(SCOPE), "N", T0, on_rules_change=SELECTED)
    assert first is not None and (first.mode, first.retag) == ("full", False)
    forced = next_pass(DONE_P, "P", T0 + DAY, on_rules_change=SELECTED, force_full=True)
    assert forced is not None and (forced.mode, forced.retag) == ("full", False)


def test_a_payloads_full_after_a_change_of_rules_still_adds_their_tags() -> None:
    """`full: true` while a change is unreconciled (or its selected pass is under way): a full pass that
    gives every object the new rules' plan, so no object of the selection misses the new tags."""
    forced = next_pass(DONE_P, "N", T0 + DAY, on_rules_change=SELECTED, force_full=True)
    assert forced is not None and (forced.mode, forced.retag) == ("full", True)
    midway = SweepPass(T0 + DAY, T0, "N", Position("logs/k"), retag=True, previous="P")
    checkpoint = Checkpoint(SCOPE, T0, "P", midway, "P")
    widened_by_full = next_pass(checkpoint, "N", T0 + 2 * DAY, on_rules_change=SELECTED, force_full=True)
    assert widened_by_full is not None
    assert (widened_by_full.mode, widened_by_full.retag, widened_by_full.position) == (
        "full",
        True,
        Position(),
    )
    full_midway = SweepPass(T0 + DAY, None, "N", Position("k"), retag=True)
    going_on = Checkpoint(SCOPE, T0, "P", full_midway, "P")
    assert next_pass(going_on, "N", T0 + 2 * DAY, on_rules_change=SELECTED, force_full=True) is full_midway


def test_an_interrupted_selected_pass_resumes_with_the_same_selection() -> None:
    midway = SweepPass(T0 + DAY, T0, "N", Position("logs/k"), retag=True, previous="P")
    checkpoint = Checkpoint(SCOPE, T0, "P", midway, "P")
    assert next_pass(checkpoint, "N", T0 + 2 * DAY, on_rules_change=SELECTED) is midway
    # The setting changed meanwhile: the pass already begun goes on as it began.
    assert next_pass(checkpoint, "N", T0 + 2 * DAY, on_rules_change=PRUNE) is midway


def test_after_a_pass_under_other_rules_only_a_full_pass_is_safe() -> None:
    """A pass after a change that did not complete may have written the new rules' tags anywhere: a
    selection from the completed rules would not name those objects."""
    midway = SweepPass(T0 + DAY, T0, "C", Position("logs/k"), retag=True, previous="P")
    checkpoint = Checkpoint(SCOPE, T0, "P", midway, "P")
    for rules in ("N", "P"):  # another change, or back to the completed rules
        after = next_pass(checkpoint, rules, T0 + 2 * DAY, on_rules_change=SELECTED)
        assert after is not None and (after.mode, after.retag, after.position) == ("full", True, Position())
    # Stopped by a change within this run: the same.
    stopped = next_pass(DONE_P, "N", T0 + DAY, on_rules_change=SELECTED, interrupted="C")
    assert stopped is not None and (stopped.mode, stopped.retag) == ("full", True)


def test_a_change_during_an_incremental_pass_still_selects() -> None:
    """An incremental pass writes by the completed rules only: the objects are as those rules left them."""
    incremental = SweepPass(T0 + DAY, T0, "P", Position("k"))
    checkpoint = Checkpoint(SCOPE, T0, "P", incremental, "P")
    after = next_pass(checkpoint, "N", T0 + DAY, on_rules_change=SELECTED, interrupted="P")
    assert after is not None and (after.mode, after.previous) == ("selected", "P")
    # Pruning, as always: a full pass.
    pruning = next_pass(checkpoint, "N", T0 + DAY, on_rules_change=PRUNE, interrupted="P")
    assert pruning is not None and (pruning.mode, pruning.retag) == ("full", False)


def test_a_selected_pass_leaves_the_completed_clock_for_the_incremental_pass() -> None:
    selected = next_pass(DONE_P, "N", T0 + 3 * DAY, on_rules_change=SELECTED)
    assert selected is not None
    done = completed(DONE_P, selected)
    assert (done.completed_clock, done.completed_fingerprint, done.current) == (T0, "N", None)
    following = next_pass(done, "N", T0 + 3 * DAY, on_rules_change=SELECTED)
    assert following is not None and (following.mode, following.since) == ("incremental", T0)
    full = next_pass(DONE_P, "N", T0 + 3 * DAY, on_rules_change=FULL)
    assert full is not None and completed(DONE_P, full).completed_clock == T0 + 3 * DAY


def test_a_selected_pass_without_previous_rules_widens_to_a_full_pass_from_the_start() -> None:
    midway = SweepPass(T0 + DAY, T0, "N", Position("logs/k"), retag=True, previous="P")
    wide = widened(midway, Checkpoint(Scope("b", "", "m", None)))
    assert (wide.mode, wide.retag, wide.since, wide.previous) == ("full", True, None, None)
    assert wide.position.key < "m" and wide.clock == midway.clock


def test_a_version_1_checkpoint_still_reads() -> None:
    document = {
        "format": 1,
        "scope": {},
        "completed": {"clock": "2026-11-01T00:00:00Z", "fingerprint": "P"},
        "current": {
            "clock": "2026-11-02T00:00:00Z",
            "since": "2026-11-01T00:00:00Z",
            "fingerprint": "P",
            "position": {"key": "k", "versionId": ""},
            "totals": {
                "listed": 1,
                "candidates": 0,
                "updated": 0,
                "deleted": 0,
                "tags_removed": 0,
                "runs": 1,
            },
        },
    }
    checkpoint = checkpoint_from_document(document, SCOPE)
    assert checkpoint.current is not None and not checkpoint.current.retag
    assert (checkpoint.current.previous, checkpoint.rules_kept) == (None, None)


def test_a_checkpoint_with_a_mistyped_pin_is_not_read() -> None:
    data = encode_checkpoint(Checkpoint(SCOPE, T0, "P", SweepPass(T0, T0, "N", previous="P")))
    with pytest.raises(CheckpointError):
        decode_checkpoint(data.replace(b'"previous": "P"', b'"previous": 7'), SCOPE)


def test_selected_prefixes_stay_in_the_scope_and_never_nest() -> None:
    assert selected_prefixes(("logs/a/", "logs/", "img/"), "") == ("img/", "logs/")
    assert selected_prefixes(("logs/a/", "img/"), "logs/") == ("logs/a/",)
    assert selected_prefixes(("",), "logs/") == ("logs/",)  # every object: the scope's prefix
    assert selected_prefixes(("img/",), "logs/") == ()  # nothing the change reaches is in this scope
    assert selected_prefixes((), "") == ()


prefix_sets = st.lists(st.text("ab/", max_size=3), max_size=4).map(lambda p: selected_prefixes(tuple(p), ""))
keys = st.lists(st.text("ab/", min_size=1, max_size=5), max_size=30, unique=True)


@given(prefix_sets, keys, st.text("ab/", max_size=5))
def test_listing_from_a_position_reaches_exactly_the_keys_after_it(
    prefixes: tuple[str, ...], stored: list[str], marker: str
) -> None:
    """Listing each prefix from where `listing_starts` says (OSS lists keys after the marker, in order)
    yields every key under the prefixes above the position, each once, in order."""
    listed = []
    for prefix, start in listing_starts(prefixes, Position(marker)):
        listed += sorted(k for k in stored if k.startswith(prefix) and k > start.key)
    expected = sorted(k for k in stored if k > marker and any(k.startswith(p) for p in prefixes))
    assert listed == expected
