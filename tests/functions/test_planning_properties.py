"""Whatever the object's tags, the rules and the event, a planned write is one OSS accepts and takes nothing
from anyone else: at most 10 tags counting the ownership record, every key and value valid, and a tag
someone else set removed or changed only by a rule whose conflict policy says overwrite."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotag.facts import ObjectFacts
from autotag.oss_tags import MAX_TAGS, tag_violations
from autotag.ownership import Ownership, ownership_record, read_record
from autotag.planning import plan_tags, prune_tags, split_expired
from autotag.rules import derive_tags, parse_rules
from autotag.rules.engine import OVERWRITE, DerivedTag

RECORD = "autotag"
TAG_TEXT = "abcXYZ019 +-=._:/中"
PROPERTY = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)

tag_keys = st.text(st.sampled_from(TAG_TEXT.replace(" ", "")), min_size=1, max_size=12)
tag_values = st.text(st.sampled_from(TAG_TEXT), max_size=12)
# The keys rules commonly set (overwrite targets), so generated objects and rules collide often.
common_keys = st.sampled_from(["status", "stage", "kind", "team", "owner", RECORD])


@st.composite
def current_tags(draw: Any) -> dict[str, str]:
    """0-10 tags OSS would hold: the uploader's, maybe some the system set with its record, maybe a tag
    of someone else's under the record's key."""
    keys = draw(st.lists(tag_keys | common_keys, unique=True, max_size=MAX_TAGS))
    tags = {k: draw(tag_values) for k in keys if k != RECORD}
    record = draw(st.sampled_from(["none", "sealed", "foreign"]))
    if record == "sealed" and tags and len(tags) < MAX_TAGS:
        owned = draw(st.sets(st.sampled_from(sorted(tags)), min_size=1))
        value = ownership_record(tags, owned, Ownership())
        if len(value) <= 256:
            tags[RECORD] = value
    elif (record == "foreign" or RECORD in keys) and len(tags) < MAX_TAGS:
        tags[RECORD] = draw(tag_values)
    return tags


templates = st.sampled_from(
    ["{key}", "{filename}", "{extension}", "{meta.owner}", "{size}", "{modified.date}", "{content_type}"]
)
value_specs = st.one_of(tag_values, templates, st.builds(lambda a, b: a + b, tag_values, templates))


@st.composite
def rule_documents(draw: Any) -> dict[str, Any]:
    rules = []
    for index in range(draw(st.integers(1, 4))):
        keys = draw(st.lists(tag_keys | common_keys.filter(lambda k: k != RECORD), unique=True, max_size=6))
        tags: dict[str, Any] = {}
        for key in keys or ["kind"]:
            spec: dict[str, Any] = {"from": "template", "template": draw(value_specs)}
            if draw(st.booleans()):
                spec["conflict"] = draw(st.sampled_from(["overwrite", "keep-existing"]))
            if draw(st.booleans()):
                spec["priority"] = draw(st.integers(0, 1000))
            if draw(st.booleans()):
                spec["ttl"] = draw(st.sampled_from(["1s", "1h", "7d", "52w"]))
            tags[key] = spec
        rule: dict[str, Any] = {"name": f"r{index}", "tags": tags}
        if draw(st.booleans()):
            rule["conflict"] = "overwrite"
        rules.append(rule)
    document: dict[str, Any] = {"version": 1, "rules": rules}
    if draw(st.booleans()):
        document["defaults"] = {"conflict": draw(st.sampled_from(["overwrite", "keep-existing"]))}
    return document


facts = st.builds(
    ObjectFacts,
    key=st.text(min_size=1, max_size=60),
    size=st.none() | st.integers(0, 2**40),
    content_type=st.none() | st.sampled_from(["image/jpeg", "text/plain; charset=utf-8", "a@b/c"]),
    user_meta=st.dictionaries(st.sampled_from(["owner", "team"]), st.text(max_size=300), max_size=2),
    last_modified=st.none() | st.datetimes(timezones=st.just(timezone.utc)),
)


def someone_elses(current: dict[str, str], ownership: Ownership) -> dict[str, str]:
    reading = read_record(current, ownership)
    return {
        k: v
        for k, v in current.items()
        if k not in reading.owned and not (k == RECORD and not reading.foreign)
    }


@PROPERTY
@given(current_tags(), rule_documents(), facts, st.integers(0, 400))
def test_a_planned_write_always_fits_oss_and_takes_nothing_from_anyone(
    current: dict[str, str], document: dict[str, Any], object_facts: ObjectFacts, days: int
) -> None:
    rules = parse_rules(document)
    derivation = derive_tags(rules, object_facts)
    created = object_facts.last_modified
    clock = created + timedelta(days=days) if created and created.year < 9000 else None
    live, expired = split_expired(derivation.tags, created, clock)
    for plan in (
        plan_tags(current, live, rules.ownership, expired),
        prune_tags(current, live, rules.ownership, expired),
    ):
        assert len(plan.desired) <= MAX_TAGS
        assert tag_violations(plan.desired) == []
        others = someone_elses(current, rules.ownership)
        for key, value in others.items():
            assert key in plan.desired, f"{key!r} someone else set was removed"
            if plan.desired[key] != value:
                winner = live.get(key)
                assert winner is not None and winner.conflict == OVERWRITE, (
                    f"{key!r} changed without overwrite"
                )
        if read_record(current, rules.ownership).foreign:
            assert plan.desired == current  # a record the system did not write: hands off entirely
        assert read_record(plan.desired, rules.ownership).owned == plan.owned
    planned = plan_tags(current, live, rules.ownership, expired)
    assert not plan_tags(
        planned.desired, live, rules.ownership, expired
    ).needs_write  # a replay writes nothing


def test_ten_uploader_tags_with_overwritten_keys_stay_within_the_limit() -> None:
    current = {"status": "draft", "stage": "dev", **{f"u{i}": "v" for i in range(8)}}
    overwrite = {key: DerivedTag(key, "final", "r", 100, OVERWRITE, None) for key in ("status", "stage")}
    for derived in (overwrite, {"status": overwrite["status"]}):
        plan = plan_tags(current, derived)
        assert len(plan.desired) <= MAX_TAGS
        assert not plan.needs_write  # no room for the record the takeover needs
        assert {d.key for d in plan.dropped} == set(derived)
        assert all("more than 10 tags" in d.reason for d in plan.dropped)
    nine = {k: v for k, v in current.items() if k != "u7"}
    plan = plan_tags(nine, {"status": overwrite["status"]})
    assert plan.changed == {"status": ("draft", "final")} and len(plan.desired) == MAX_TAGS


def test_a_foreign_value_under_the_record_key_is_never_overwritten() -> None:
    kind = {"kind": DerivedTag("kind", "image", "r", 100, OVERWRITE, None)}
    plan = plan_tags({"autotag": "off", "kind": "photo"}, kind)
    assert not plan.needs_write and plan.desired == {"autotag": "off", "kind": "photo"}
    assert "holds a value this system did not write" in plan.hands_off


def test_a_record_the_system_did_not_write_claims_nothing() -> None:
    forged = {"team": "finance", "autotag": "team"}
    assert not prune_tags(forged, {}).needs_write
    assert not plan_tags(forged, {}).needs_write
    # a record the system wrote, whose tag someone changed since: the tag is theirs now
    written = {"team": "finance"}
    written["autotag"] = ownership_record(written, {"team"}, Ownership())
    edited = {**written, "team": "sales"}
    assert not prune_tags(edited, {}).needs_write
    assert prune_tags(written, {}).desired == {}  # untouched, the system's own tag goes as before


def test_a_secret_keyed_seal_refuses_records_sealed_without_it() -> None:
    keyed = Ownership(secrets=("s3cret",))
    forged = {"team": "finance"}
    forged["autotag"] = ownership_record(forged, {"team"}, Ownership())  # the public, unkeyed seal
    assert read_record(forged, keyed).foreign
    genuine = {"team": "finance"}
    genuine["autotag"] = ownership_record(genuine, {"team"}, keyed)
    assert read_record(genuine, keyed).owned == {"team"}
    rotated = Ownership(secrets=("new", "s3cret"))
    assert read_record(genuine, rotated).owned == {"team"}  # an old secret still opens its records
