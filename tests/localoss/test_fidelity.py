"""Behaviour other clients than oss2 rely on (the OSS Python SDK V2 above all), checked against what OSS
documents: batch-delete XML, range behaviour, symlink chains, copy metadata, response digests, the order of
bucket and credential checks, unknown parameters."""

from __future__ import annotations

import base64
import hashlib

import alibabacloud_oss_v2 as ossv2
import oss2
import pytest
import requests
from conftest import REGION, BucketFactory

from localcloud.oss import LocalOSS

CONTROL_CHARACTERS = "".join(chr(c) for c in range(1, 32))


def test_batch_delete_reads_character_references_as_xml(bucket: oss2.Bucket, v2_client: ossv2.Client) -> None:
    # The V2 SDK writes control characters as `&#01;`..`&#31;`; XML reads them as those characters.
    key = "v2-controls-" + CONTROL_CHARACTERS
    other = "v2-controls-"  # what dropping the characters would name instead
    bucket.put_object(key, b"x")
    bucket.put_object(other, b"y")
    result = v2_client.delete_multiple_objects(
        ossv2.DeleteMultipleObjectsRequest(
            bucket=bucket.bucket_name, encoding_type="url", objects=[ossv2.DeleteObject(key=key)]
        )
    )
    assert [d.key for d in result.deleted_objects] == [key]
    assert not bucket.object_exists(key)
    assert bucket.object_exists(other)


def test_batch_delete_still_takes_raw_control_characters(bucket: oss2.Bucket) -> None:
    # oss2 sends them raw, which OSS accepts as well.
    key = "oss2-controls-\x01\x0c\x1f"
    bucket.put_object(key, b"x")
    assert bucket.batch_delete_objects([key]).deleted_keys == [key]
    assert not bucket.object_exists(key)


@pytest.mark.parametrize("key", ["cr-\r-key", "crlf-\r\n-key", "\r"])
def test_batch_delete_keeps_a_raw_carriage_return(bucket: oss2.Bucket, key: str) -> None:
    # oss2 sends a CR in a key raw; an XML parser would read it (and CRLF) as LF, deleting another object.
    lookalike = key.replace("\r\n", "\n").replace("\r", "\n")
    bucket.put_object(key, b"x")
    bucket.put_object(lookalike, b"y")
    assert bucket.batch_delete_objects([key]).deleted_keys == [key]
    assert not bucket.object_exists(key)
    assert bucket.object_exists(lookalike)


def test_batch_delete_reads_crlf_laid_out_documents(bucket: oss2.Bucket) -> None:
    # CRs outside the keys (a document written with CRLF line ends, a CR inside a tag) are layout.
    bucket.put_object("a", b"x")
    bucket.put_object("b\r", b"x")
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\r\n<Delete\r\n>\r\n  <Quiet>false\r\n</Quiet>\r\n'
        b"  <Object>\r\n    <Key>a</Key>\r\n  </Object>\r\n"
        b"  <Object><Key>b&#13;</Key></Object>\r\n</Delete>\r\n"
    )
    headers = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}
    response = bucket._Bucket__do_bucket(
        "POST", data=body, params={"delete": "", "encoding-type": "url"}, headers=headers
    )
    result = oss2.models.BatchDeleteObjectsResult(response)
    oss2.xml_utils.parse_batch_delete_objects(result, response.read())
    assert sorted(result.deleted_keys) == ["a", "b\r"]
    assert not bucket.object_exists("a") and not bucket.object_exists("b\r")


def _get(bucket: oss2.Bucket, key: str, span: str, standard: bool) -> requests.Response:
    headers = {"Range": span, **({"x-oss-range-behavior": "standard"} if standard else {})}
    url = bucket.sign_url("GET", key, 60, headers=headers)
    return requests.get(url, headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("span", "standard", "status", "body"),
    [
        ("bytes=2-5", False, 206, b"2345"),
        ("bytes=5-20", False, 200, b"0123456789"),  # end past the size: the whole object
        ("bytes=10-20", False, 200, b"0123456789"),  # start past the size: the whole object
        ("bytes=-20", False, 200, b"0123456789"),
        ("bytes=5-20", True, 206, b"56789"),  # standard: the end is cut to the size
        ("bytes=-20", True, 206, b"0123456789"),
    ],
)
def test_ranges_past_the_end(
    bucket: oss2.Bucket, span: str, standard: bool, status: int, body: bytes
) -> None:
    bucket.put_object("digits", b"0123456789")
    answer = _get(bucket, "digits", span, standard)
    assert (answer.status_code, answer.content) == (status, body)


def test_standard_range_starting_past_the_end_is_416(bucket: oss2.Bucket) -> None:
    bucket.put_object("digits", b"0123456789")
    answer = _get(bucket, "digits", "bytes=10-20", standard=True)
    assert answer.status_code == 416
    assert "<Code>InvalidRange</Code>" in answer.text


def test_symlink_to_a_symlink_is_invalid_target_type(bucket: oss2.Bucket) -> None:
    bucket.put_object("target", b"body")
    bucket.put_symlink("target", "link")
    bucket.put_symlink("link", "link-to-link")
    for read in (bucket.get_object, bucket.head_object):
        with pytest.raises(oss2.exceptions.ServerError) as caught:
            read("link-to-link")
        assert caught.value.status == 400
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.get_object("link-to-link")
    assert caught.value.code == "InvalidTargetType"


def test_copy_with_replace_and_no_content_type_keeps_the_source_type(bucket: oss2.Bucket) -> None:
    bucket.put_object("source.bin", b"x", headers={"Content-Type": "text/plain"})
    # requests would add no Content-Type; oss2 would guess one from the key, so send the copy raw.
    headers = {
        "x-oss-copy-source": f"/{bucket.bucket_name}/source.bin",
        "x-oss-metadata-directive": "REPLACE",
    }
    url = bucket.sign_url("PUT", "copy.bin", 60, headers=headers)
    answer = requests.put(url, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert bucket.head_object("copy.bin").content_type == "text/plain"


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_put_object_and_upload_part_answer_with_content_md5(
    v2_client: ossv2.Client, bucket: oss2.Bucket
) -> None:
    name = bucket.bucket_name
    put = v2_client.put_object(ossv2.PutObjectRequest(bucket=name, key="k", body=b"data"))
    assert put.content_md5 == _md5(b"data")
    upload = v2_client.initiate_multipart_upload(ossv2.InitiateMultipartUploadRequest(bucket=name, key="m"))
    part = v2_client.upload_part(
        ossv2.UploadPartRequest(bucket=name, key="m", upload_id=upload.upload_id, part_number=1, body=b"part")
    )
    assert part.content_md5 == _md5(b"part")


def test_unknown_access_key_on_a_missing_bucket_is_no_such_bucket(oss: LocalOSS) -> None:
    stranger = oss2.Bucket(oss2.Auth("no-such-key", "no-such-secret"), oss.endpoint, "no-such-bucket-here")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        stranger.get_bucket_info()
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        stranger.get_object_meta("k")
    # On a bucket that exists, the key is checked first.
    existing = oss2.Bucket(oss2.Auth("local-access-key", "local-secret-key"), oss.endpoint, "exists-for-ak")
    existing.create_bucket()
    stranger = oss2.Bucket(oss2.Auth("no-such-key", "no-such-secret"), oss.endpoint, "exists-for-ak")
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        stranger.get_bucket_info()
    assert (caught.value.status, caught.value.code) == (403, "InvalidAccessKeyId")
    existing.delete_bucket()


def test_v2_is_bucket_exist_with_an_unknown_key(oss: LocalOSS) -> None:
    config = ossv2.config.load_default()
    config.credentials_provider = ossv2.credentials.StaticCredentialsProvider("no-such-key", "secret")
    config.region, config.endpoint, config.use_path_style = REGION, oss.endpoint, True
    assert ossv2.Client(config).is_bucket_exist("no-such-bucket-v2") is False


def test_list_objects_ignores_unknown_parameters(bucket: oss2.Bucket, v2_client: ossv2.Client) -> None:
    bucket.put_object("a", b"x")
    answer = v2_client.invoke_operation(
        ossv2.OperationInput(
            op_name="ListObjects",
            method="GET",
            bucket=bucket.bucket_name,
            parameters={"unknown-parameter": "1", "max-keys": "10"},
        )
    )
    assert answer.status_code == 200
    assert b"<Key>a</Key>" in answer.http_response.content


def test_describe_regions_is_not_a_bucket_list(new_bucket: BucketFactory, oss: LocalOSS) -> None:
    new_bucket()
    service = oss2.Service(oss2.Auth("local-access-key", "local-secret-key"), oss.endpoint)
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        service.describe_regions()
    assert (caught.value.status, caught.value.code) == (501, "NotImplemented")


def test_apis_left_out_check_credentials_first(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    stranger = oss2.Service(oss2.Auth("no-such-key", "no-such-secret"), oss.endpoint)
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        stranger.describe_regions()
    assert (caught.value.status, caught.value.code) == (403, "InvalidAccessKeyId")
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        oss2.Bucket(oss2.Auth("no-such-key", "x"), oss.endpoint, bucket.bucket_name).restore_object("k")
    assert (caught.value.status, caught.value.code) == (403, "InvalidAccessKeyId")


def test_no_content_type_is_octet_stream_whatever_the_key(bucket: oss2.Bucket) -> None:
    # OSS guesses nothing from the key's extension; oss2 guesses before sending, so send the PUT raw.
    url = bucket.sign_url("PUT", "photo.jpg", 60)
    assert requests.put(url, data=b"x", timeout=10).status_code == 200
    assert bucket.head_object("photo.jpg").content_type == "application/octet-stream"


def test_image_processing_is_not_answered_with_the_unprocessed_object(bucket: oss2.Bucket) -> None:
    bucket.put_object("photo.jpg", b"not really a photo")
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.get_object("photo.jpg", process="image/resize,w_100")
    assert (caught.value.status, caught.value.code) == (501, "NotImplemented")
    assert bucket.get_object("photo.jpg").read() == b"not really a photo"
