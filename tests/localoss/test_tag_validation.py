"""Every OSS tag rule is enforced on every path that sets tags, with an InvalidTag error naming the tag."""

from __future__ import annotations

import oss2
import pytest
import requests
from conftest import tags_of

from localcloud.oss import LocalOSS


def _tagging(tags: dict[str, str]) -> oss2.models.Tagging:
    rule = oss2.models.TaggingRule()
    for key, value in tags.items():
        rule.tagging_rule[key] = value  # bypasses oss2's own client-side checks, so the server decides
    return oss2.models.Tagging(rule)


BAD_TAG_SETS = {
    "11 tags": {f"k{i}": "v" for i in range(11)},
    "129-char key": {"k" * 129: "v"},
    "257-char value": {"k": "v" * 257},
    "empty key": {"": "v"},
    "percent in key": {"%@abc": "v"},
    "percent in value": {"k": "%abc"},
    "at sign": {"k": "a@b"},
    "ampersand": {"k": "a&b"},
}
GOOD_TAG_SETS = {
    "10 tags": {f"k{i}": f"v{i}" for i in range(10)},
    "limits": {"k" * 128: "v" * 256},
    "empty value": {"k": ""},
    "allowed punctuation": {"a+b-c=d.e_f:g/h i": "+-=._:/ "},
    "unicode letters": {"中文": "値", "ключ": "значение"},
}


@pytest.mark.parametrize("case", BAD_TAG_SETS)
def test_put_object_tagging_rejects(bucket: oss2.Bucket, case: str) -> None:
    bucket.put_object("k", b"v", headers={"x-oss-tagging": "keep=me"})
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.put_object_tagging("k", _tagging(BAD_TAG_SETS[case]))
    assert (caught.value.status, caught.value.code) == (400, "InvalidTag")
    assert tags_of(bucket, "k") == {"keep": "me"}  # a refused write changes nothing


@pytest.mark.parametrize("case", GOOD_TAG_SETS)
def test_put_object_tagging_accepts(bucket: oss2.Bucket, case: str) -> None:
    bucket.put_object("k", b"v")
    bucket.put_object_tagging("k", _tagging(GOOD_TAG_SETS[case]))
    assert tags_of(bucket, "k") == GOOD_TAG_SETS[case]


@pytest.mark.parametrize(
    "header",
    ["a=b=c", "=v", "a=1&a=2", "&".join(f"k{i}=v" for i in range(11)), "k=%25", "k" * 129 + "=v", "noequals"],
)
@pytest.mark.parametrize("path", ["put", "append", "multipart", "symlink", "copy"])
def test_x_oss_tagging_header_rejected_on_every_upload_path(
    bucket: oss2.Bucket, header: str, path: str
) -> None:
    bucket.put_object("source", b"src")
    headers = {"x-oss-tagging": header}
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        if path == "put":
            bucket.put_object("k", b"v", headers=headers)
        elif path == "append":
            bucket.append_object("k", 0, b"v", headers=headers)
        elif path == "multipart":
            bucket.init_multipart_upload("k", headers=headers)
        elif path == "symlink":
            bucket.put_symlink("source", "k", headers=headers)
        else:
            bucket.copy_object(
                bucket.bucket_name, "source", "k", headers={**headers, "x-oss-tagging-directive": "REPLACE"}
            )
    assert caught.value.status == 400
    assert caught.value.code == "InvalidTag"
    assert not bucket.object_exists("k")


def test_url_encoded_header_tags_round_trip(bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"v", headers={"x-oss-tagging": "%2B%3A%2F=.-&%20%2B%20=%E4%B8%AD%E6%96%87"})
    assert tags_of(bucket, "k") == {"+:/": ".-", " + ": "中文"}


def test_malformed_tagging_xml_is_malformed_xml(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"v")
    url = bucket.sign_url("PUT", "k", 60, params={"tagging": ""})
    response = requests.put(url, data=b"<Tagging><TagSet><Tag>", timeout=10)
    assert response.status_code == 400
    assert b"<Code>MalformedXML</Code>" in response.content


def test_error_message_names_the_offending_tag(bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"v")
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.put_object_tagging("k", _tagging({"ok": "1", "bad@key": "2"}))
    assert "bad@key" in caught.value.message
