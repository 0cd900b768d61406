"""Tag plans: merge never clobbers, budgets the 10-tag limit by priority, sanitises deterministically."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotag.oss_tags import tag_violations
from autotag.planning import plan_tags, sanitise
from autotag.rules.engine import KEEP_EXISTING, OVERWRITE, DerivedTag


def derived(key: str, value: str, priority: int = 100, conflict: str = KEEP_EXISTING) -> DerivedTag:
    return DerivedTag(key, value, f"rule-{key}", priority, conflict, None)


def as_map(*tags: DerivedTag) -> dict[str, DerivedTag]:
    return {t.key: t for t in tags}


def test_new_object_gets_the_derived_tags() -> None:
    plan = plan_tags({}, as_map(derived("kind", "image"), derived("size", "small")))
    assert plan.desired == plan.added == {"kind": "image", "size": "small"}
    assert plan.needs_write


def test_uploader_tags_are_kept_and_keep_existing_is_respected() -> None:
    plan = plan_tags({"kind": "photo", "team": "a"}, as_map(derived("kind", "image"), derived("size", "s")))
    assert plan.desired == {"kind": "photo", "team": "a", "size": "s"}
    assert plan.kept == {"kind": "photo", "team": "a"}
    assert [(d.key, d.reason) for d in plan.dropped] == [
        ("kind", "kept the existing value 'photo' (conflict policy keep-existing)")
    ]


def test_overwrite_policy_changes_the_value() -> None:
    plan = plan_tags({"kind": "photo"}, as_map(derived("kind", "image", conflict=OVERWRITE)))
    assert plan.changed == {"kind": ("photo", "image")}
    assert plan.desired == {"kind": "image"}
    assert plan.kept == {}


def test_replay_of_the_same_derivation_writes_nothing() -> None:
    first = plan_tags({"team": "a"}, as_map(derived("kind", "image", conflict=OVERWRITE)))
    again = plan_tags(first.desired, as_map(derived("kind", "image", conflict=OVERWRITE)))
    assert not again.needs_write
    assert again.added == again.changed == {}


def test_ten_tag_budget_goes_to_current_tags_then_priority() -> None:
    current = {f"user{i}": "v" for i in range(8)}
    plan = plan_tags(
        current,
        as_map(
            derived("low", "1", priority=1),
            derived("high", "1", priority=500),
            derived("mid", "1", priority=50),
        ),
    )
    assert set(plan.desired) == set(current) | {"high", "mid"}
    assert [d.key for d in plan.dropped] == ["low"]
    assert "10 tags" in plan.dropped[0].reason


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
    assert plan.desired == {"a_b": "v_w"}
    assert [d.reason for d in plan.dropped] == [
        "the tag key is empty",
        "a higher-priority tag already set 'a_b' to 'v_w'",
    ]


current_tags = st.dictionaries(
    st.text(st.characters(categories=["L", "Nd"]), min_size=1, max_size=5), st.text(max_size=5), max_size=10
)
derived_tags = st.lists(
    st.builds(
        derived,
        st.text(max_size=140),
        st.text(max_size=300),
        st.integers(0, 1000),
        st.sampled_from([KEEP_EXISTING, OVERWRITE]),
    ),
    max_size=15,
)


@given(current_tags, derived_tags)
def test_plans_never_drop_current_keys_and_always_satisfy_oss(
    current: dict[str, str], tags: list[DerivedTag]
) -> None:
    plan = plan_tags(current, {t.key: t for t in tags})
    assert set(current) <= set(plan.desired)  # nothing anyone set is removed
    for key, value in current.items():  # and only overwrite-policy tags change a value
        assert plan.desired[key] == value or key in plan.changed
    new_part = {k: v for k, v in plan.desired.items() if k not in current or k in plan.changed}
    assert tag_violations(new_part) == []
    assert len(plan.desired) <= max(10, len(current))
    assert plan_tags(current, {t.key: t for t in tags}) == plan  # deterministic
