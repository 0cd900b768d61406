"""The product's OSS tag codec: header round trips, and limits that agree with what OSS accepts."""

from __future__ import annotations

import oss2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotag.oss_tags import (
    MAX_KEY_LENGTH,
    MAX_TAGS,
    TaggingHeaderError,
    decode_tagging_header,
    encode_tagging_header,
    tag_violations,
)

ALLOWED = st.characters(categories=["L", "Nd"]) | st.sampled_from(list(" +-=._:/"))
ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
valid_keys = st.text(ALLOWED, min_size=1, max_size=MAX_KEY_LENGTH)
valid_values = st.text(ALLOWED, max_size=40)
valid_tag_sets = st.dictionaries(valid_keys, valid_values, max_size=MAX_TAGS)


@given(st.dictionaries(ANY_TEXT.filter(bool), ANY_TEXT, max_size=12))
def test_header_round_trip_for_any_text(tags: dict[str, str]) -> None:
    assert decode_tagging_header(encode_tagging_header(tags)) == tags


@given(valid_tag_sets)
def test_valid_tag_sets_have_no_violations(tags: dict[str, str]) -> None:
    assert tag_violations(tags) == []


@pytest.mark.parametrize(
    ("tags", "fragment"),
    [
        ({f"k{i}": "v" for i in range(11)}, "11 tags exceed the OSS limit of 10"),
        ({"k" * 129: "v"}, "is 129 characters; OSS allows 1 to 128"),
        ({"": "v"}, "is 0 characters"),
        ({"k": "v" * 257}, "is 257 characters; OSS allows at most 256"),
        ({"k": "a@b"}, "tag value 'a@b' has characters outside"),
        ({"a%b": "v"}, "tag key 'a%b' has characters outside"),
    ],
)
def test_violations_name_the_tag_and_the_limit(tags: dict[str, str], fragment: str) -> None:
    assert any(fragment in problem for problem in tag_violations(tags))


@pytest.mark.parametrize("header", ["a=b=c", "novalue", "a=1&a=2"])
def test_malformed_headers_are_named(header: str) -> None:
    with pytest.raises(TaggingHeaderError, match="x-oss-tagging"):
        decode_tagging_header(header)


def test_empty_header_is_no_tags() -> None:
    assert decode_tagging_header("") == {}


candidate_tag_sets = st.dictionaries(
    st.text(ALLOWED | st.sampled_from(list("%@&#")), max_size=130),
    st.text(ALLOWED | st.sampled_from(list("%@")), max_size=260),
    max_size=11,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(candidate_tag_sets)
def test_codec_agrees_with_the_local_oss(bucket: oss2.Bucket, tags: dict[str, str]) -> None:
    """Whatever tag_violations allows, OSS (the local one) accepts, and whatever it refuses, OSS refuses."""
    rule = oss2.models.TaggingRule()
    rule.tagging_rule.update(tags)
    bucket.put_object("k", b"")
    try:
        bucket.put_object_tagging("k", oss2.models.Tagging(rule))
        accepted = True
    except oss2.exceptions.ServerError:
        accepted = False
    assert accepted == (tag_violations(tags) == [])
