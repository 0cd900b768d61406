"""Tag plans: merge never clobbers, budgets the 10-tag limit by priority, sanitises deterministically."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from conftest import readable, sealed

from autotag.ownership import Ownership
from autotag.planning import plan_tags, sanitise, split_expired
from autotag.rules.engine import KEEP_EXISTING, OVERWRITE, DerivedTag


def derived(
    key: str, value: str, priority: int = 100, conflict: str = KEEP_EXISTING, ttl: int | None = None
) -> DerivedTag:
    return DerivedTag(key, value, f"rule-{key}", priority, conflict, ttl)


def as_map(*tags: DerivedTag) -> dict[str, DerivedTag]:
    return {t.key: t for t in tags}


def test_new_object_gets_the_derived_tags_and_the_ownership_record() -> None:
    plan = plan_tags({}, as_map(derived("kind", "image"), derived("size", "small")))
    assert plan.added == {"kind": "image", "size": "small"}
    assert readable(plan.desired) == {"kind": "image", "size": "small", "autotag": "kind size"}
    assert plan.owned == {"kind", "size"}
    assert plan.needs_write


def test_uploader_tags_are_kept_and_keep_existing_is_respected() -> None:
    plan = plan_tags({"kind": "photo", "team": "a"}, as_map(derived("kind", "image"), derived("size", "s")))
    assert readable(plan.desired) == {"kind": "photo", "team": "a", "size": "s", "autotag": "size"}
    assert plan.kept == {"kind": "photo", "team": "a"}
    assert [(d.key, d.reason) for d in plan.dropped] == [
        ("kind", "kept the existing value 'photo' (conflict policy keep-existing)")
    ]


def test_overwrite_policy_changes_the_value_and_takes_the_tag_over() -> None:
    plan = plan_tags({"kind": "photo"}, as_map(derived("kind", "image", conflict=OVERWRITE)))
    assert plan.changed == {"kind": ("photo", "image")}
    assert readable(plan.desired) == {"kind": "image", "autotag": "kind"}
    assert plan.kept == {}


def test_owned_tags_follow_the_rules_whatever_the_conflict_policy() -> None:
    current = sealed({"owner": "alice"}, "owner")
    plan = plan_tags(current, as_map(derived("owner", "bob")))  # metadata changed: our own value is stale
    assert plan.changed == {"owner": ("alice", "bob")}
    assert readable(plan.desired) == {"owner": "bob", "autotag": "owner"}


def test_owned_tags_no_rule_derives_are_removed_and_others_are_not() -> None:
    current = sealed({"project": "x", "kind": "image", "team": "a"}, "project", "kind")
    plan = plan_tags(current, as_map(derived("kind", "image")))
    assert readable(plan.desired) == {"kind": "image", "team": "a", "autotag": "kind"}
    assert [(r.key, r.value, r.reason) for r in plan.removed] == [
        ("project", "x", "no current rule derives it for this object")
    ]
    assert plan.kept == {"kind": "image", "team": "a"}


def test_the_record_goes_when_nothing_is_owned_any_more() -> None:
    plan = plan_tags(sealed({"project": "x", "team": "a"}, "project"), {})
    assert plan.desired == {"team": "a"}


def test_protected_keys_are_never_removed() -> None:
    current = sealed({"cost-center": "42", "project": "x"}, "cost-center", "project")
    plan = plan_tags(current, {}, Ownership(protected=frozenset({"cost-center"})))
    assert readable(plan.desired) == {"cost-center": "42", "autotag": "cost-center"}
    assert [r.key for r in plan.removed] == ["project"]


def test_a_record_naming_keys_someone_removed_leaves_the_object_alone() -> None:
    current = sealed({"team": "a", "team-gone": "x"}, "team", "team-gone")
    del current["team-gone"]  # someone else removed a tag the system set: the record no longer holds
    plan = plan_tags(current, {})
    assert plan.desired == current and "was removed by someone else" in plan.hands_off


def test_expired_tags_are_removed_when_owned_and_never_added() -> None:
    created = datetime(2026, 1, 1, tzinfo=timezone.utc)
    tags = as_map(derived("lifecycle", "temporary", ttl=7 * 86400), derived("kind", "log"))
    live, expired = split_expired(tags, created, created + timedelta(days=7))
    assert set(live) == {"kind"} and set(expired) == {"lifecycle"}
    owned = sealed({"lifecycle": "temporary", "kind": "log"}, "kind", "lifecycle")
    plan = plan_tags(owned, live, Ownership(), expired)
    assert readable(plan.desired) == {"kind": "log", "autotag": "kind"}
    assert plan.removed[0].reason == "its TTL (7d from Last-Modified) has passed"
    fresh = plan_tags({}, live, Ownership(), expired)
    assert readable(fresh.desired) == {"kind": "log", "autotag": "kind"}
    assert [(d.key, d.reason) for d in fresh.dropped] == [("lifecycle", "its TTL has already passed")]
    just_before = split_expired(tags, created, created + timedelta(days=7, seconds=-1))
    assert set(just_before[0]) == {"kind", "lifecycle"}


def test_user_tag_named_like_an_expired_tag_is_not_removed() -> None:
    created = datetime(2026, 1, 1, tzinfo=timezone.utc)
    live, expired = split_expired(
        as_map(derived("lifecycle", "temporary", ttl=60)), created, created + timedelta(days=1)
    )
    plan = plan_tags({"lifecycle": "keep-me"}, live, Ownership(), expired)
    assert not plan.needs_write


def test_replay_of_the_same_derivation_writes_nothing() -> None:
    first = plan_tags({"team": "a"}, as_map(derived("kind", "image", conflict=OVERWRITE)))
    again = plan_tags(first.desired, as_map(derived("kind", "image", conflict=OVERWRITE)))
    assert not again.needs_write
    assert again.added == again.changed == {}


def test_ten_tag_budget_goes_to_current_tags_then_priority_and_the_record_takes_a_slot() -> None:
    current = {f"user{i}": "v" for i in range(7)}
    plan = plan_tags(
        current,
        as_map(
            derived("low", "1", priority=1),
            derived("high", "1", priority=500),
            derived("mid", "1", priority=50),
        ),
    )
    assert set(plan.desired) == set(current) | {"high", "mid", "autotag"}
    assert [d.key for d in plan.dropped] == ["low"]
    assert "10 tags" in plan.dropped[0].reason


def test_nine_user_tags_leave_no_room_for_a_tag_and_its_record() -> None:
    plan = plan_tags({f"user{i}": "v" for i in range(9)}, as_map(derived("kind", "image")))
    assert not plan.needs_write
    assert [d.key for d in plan.dropped] == ["kind"]


def test_the_record_never_exceeds_256_characters() -> None:
    tags = as_map(*(derived(f"{i}" + "k" * 100, "v", priority=100 - i) for i in range(4)))
    plan = plan_tags({}, tags)
    assert len(plan.desired["autotag"]) <= 256
    assert len(plan.added) == 2
    assert {d.reason for d in plan.dropped} == {"the ownership record would exceed 256 characters"}


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("a@b%c&d", 10, "a_b_c_d"),
        ("中文 ok+-=._:/", 20, "中文 ok+-=._:/"),
        ("x" * 300, 256, "x" * 256),
        ("tab\tnew\nline", 20, "tab_new_line"),
    ],
)
def test_sanitise(text: str, limit: int, expected: str) -> None:
    assert sanitise(text, limit) == expected


def test_sanitised_keys_and_empty_keys() -> None:
    plan = plan_tags({}, as_map(derived("a@b", "v@w"), derived("", "x"), derived("a%b", "other", priority=1)))
    assert readable(plan.desired) == {"a_b": "v_w", "autotag": "a_b"}
    assert [d.reason for d in plan.dropped] == [
        "the tag key is empty",
        "a higher-priority tag already decided 'a_b'",
    ]
