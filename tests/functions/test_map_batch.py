"""Parsing the batch a distributed Map passes the backfill function: what names an object, and what not;
the execution's own rules it carries, and where they may not be kept."""

from __future__ import annotations

import pytest

from autotag.handlers.rules_source import pinned_rules
from autotag.map_batch import BatchError, BatchItem, BatchRules, batch_rules, is_map_batch, parse_map_batch
from autotag.rules import RulesError
from autotag.settings import ConfigurationError, Settings


def test_listing_items_name_objects_by_their_raw_keys_and_nothing_else_is_taken() -> None:
    items = parse_map_batch(
        {
            "Items": [
                {"Bucket": "b", "Key": "a%20b+c.txt", "Size": 5, "ETag": '"X"', "LastModified": "stale"},
                {"Bucket": "b", "Key": "v.txt", "VersionId": "CAEQ"},
            ]
        }
    )
    assert items == [BatchItem(0, "b", "a%20b+c.txt"), BatchItem(1, "b", "v.txt", "CAEQ")]


def test_manifest_rows_are_url_decoded_when_the_batch_says_so_keeping_plus_signs() -> None:
    document = {
        "Items": [{"Bucket": "b", "Key": "a%20b+c%2Fd", "VersionId": ""}, {"Bucket": "b", "Key": "%2Dx"}],
        "BatchInput": {"KeyEncoding": "url"},
    }
    assert parse_map_batch(document) == [BatchItem(0, "b", "a b+c/d"), BatchItem(1, "b", "-x")]


def test_batch_input_bucket_is_the_default_for_items_naming_none() -> None:
    document = {"Items": [{"Key": "k"}, {"Bucket": "other", "Key": "k"}], "BatchInput": {"Bucket": "b"}}
    assert [(i.bucket, i.key) for i in parse_map_batch(document)] == [("b", "k"), ("other", "k")]


@pytest.mark.parametrize(
    ("item", "error"),
    [
        ("k", "Items[0] is not an object"),
        ({"Bucket": "b"}, "Items[0] names no Key"),
        ({"Bucket": "b", "Key": ""}, "Items[0] names no Key"),
        ({"Bucket": "b", "Key": 7}, "Items[0] names no Key"),
        ({"Key": "k"}, "Items[0] names no Bucket"),
        ({"Bucket": "b", "Key": "k" * 1024}, "Items[0].Key is over 1023 bytes"),
    ],
)
def test_an_item_naming_no_object_is_reported_alone(item: object, error: str) -> None:
    bad, good = parse_map_batch({"Items": [item, {"Bucket": "b", "Key": "ok"}]})
    assert bad.error == error
    assert good == BatchItem(1, "b", "ok")


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ([{"Key": "k"}], "not a distributed Map's batch"),
        ({"Items": "k"}, "not a distributed Map's batch"),
        ({"Items": [], "BatchInput": []}, "BatchInput: must be an object"),
        ({"Items": [], "BatchInput": {"Bucket": 1}}, "BatchInput.Bucket: must be a string"),
        ({"Items": [], "BatchInput": {"KeyEncoding": "base64"}}, "BatchInput.KeyEncoding: 'base64'"),
    ],
)
def test_a_payload_that_is_no_batch_is_refused_naming_the_field(document: object, error: str) -> None:
    assert not is_map_batch(document) or isinstance(document, dict)
    with pytest.raises(BatchError, match=error):
        parse_map_batch(document)


def test_the_executions_rules_are_taken_from_batch_input_with_the_version_pinned() -> None:
    assert batch_rules({"Items": [], "BatchInput": {"Bucket": "b"}}) is None
    assert batch_rules({"Items": [], "BatchInput": {"Rules": None, "RulesETag": None}}) is None
    given = {"Items": [], "BatchInput": {"Rules": "oss://s/r.json", "RulesETag": '"ABC"'}}
    assert batch_rules(given) == BatchRules("oss://s/r.json", "ABC")
    with pytest.raises(BatchError, match=r"BatchInput\.Rules:"):
        batch_rules({"Items": [], "BatchInput": {"Rules": 5}})
    with pytest.raises(BatchError, match=r"BatchInput\.RulesETag"):
        batch_rules({"Items": [], "BatchInput": {"Rules": "oss://s/r.json", "RulesETag": ""}})


def test_an_executions_rules_in_a_bucket_the_function_tags_are_refused_before_any_request() -> None:
    settings = Settings(rules="default", endpoint="http://127.0.0.1:9", buckets=frozenset({"tagged"}))
    with pytest.raises(ConfigurationError, match="is a bucket this function tags"):
        pinned_rules(settings, None, "oss://tagged/rules.json", "ABC")
    with pytest.raises(RulesError, match="must be oss://"):
        pinned_rules(settings, None, "rules.json", None)
