"""The local OSS verifies V1 and V4 signatures (header and presigned), STS tokens and clock skew."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from email.utils import formatdate

import oss2
import pytest
import requests
from conftest import STS, BucketFactory, make_auth

from localcloud.oss import LocalOSS
from localcloud.oss.auth import Credential, authenticate
from localcloud.oss.errors import OssError
from localcloud.oss.request import OssRequest, split_target

ODD_KEYS = [
    "plain.txt",
    "dir/sub dir/photo+1.jpg",
    "中文/文件 名.txt",
    "a%2Fb%25c?d#e&f=g.txt",
    "~*!'();@$,.bin",
]


@pytest.mark.parametrize("auth", ["v1", "v4", "sts-v1", "sts-v4"])
@pytest.mark.parametrize("key", ODD_KEYS)
def test_every_signing_flavour_round_trips_odd_keys(new_bucket: BucketFactory, auth: str, key: str) -> None:
    bucket = new_bucket(auth)
    bucket.put_object(key, b"body", headers={"x-oss-meta-owner": "bob", "x-oss-tagging": "a=1"})
    assert bucket.get_object(key).read() == b"body"
    assert bucket.get_object_tagging(key).tag_set.tagging_rule == {"a": "1"}
    assert [o.key for o in oss2.ObjectIterator(bucket)] == [key]


@pytest.mark.parametrize("auth", ["v1", "v4"])
def test_presigned_urls_are_verified(new_bucket: BucketFactory, auth: str) -> None:
    bucket = new_bucket(auth)
    bucket.put_object("中文 key+1.txt", b"hello")
    url = bucket.sign_url("GET", "中文 key+1.txt", 60)
    assert requests.get(url, timeout=10).content == b"hello"
    tampered = url.replace("key%2B1", "key%2B2")
    assert requests.get(tampered, timeout=10).status_code == 403


def test_expired_presigned_url_is_refused(bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"v")
    url = bucket.sign_url("GET", "k", -10)
    response = requests.get(url, timeout=10)
    assert response.status_code == 403
    assert b"<Code>AccessDenied</Code>" in response.content


def _bucket_with(oss: LocalOSS, name: str, auth: oss2.AuthBase) -> oss2.Bucket:
    return oss2.Bucket(auth, oss.endpoint, name, region="cn-hangzhou")


@pytest.mark.parametrize("version", [oss2.AUTH_VERSION_1, oss2.AUTH_VERSION_4])
def test_wrong_secret_is_signature_does_not_match(oss: LocalOSS, bucket: oss2.Bucket, version: str) -> None:
    intruder = _bucket_with(
        oss, bucket.bucket_name, oss2.make_auth("local-access-key", "not-the-secret", version)
    )
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as caught:
        intruder.put_object("k", b"v")
    assert caught.value.status == 403
    assert "StringToSign" in caught.value.details


@pytest.mark.parametrize("version", [oss2.AUTH_VERSION_1, oss2.AUTH_VERSION_4])
def test_unknown_access_key_is_refused(oss: LocalOSS, bucket: oss2.Bucket, version: str) -> None:
    stranger = _bucket_with(oss, bucket.bucket_name, oss2.make_auth("nobody", "secret", version))
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        stranger.get_bucket_info()
    assert (caught.value.status, caught.value.code) == (403, "InvalidAccessKeyId")


@pytest.mark.parametrize(
    ("token", "expected"), [("", "InvalidSecurityToken"), ("wrong-token", "InvalidSecurityToken")]
)
def test_sts_key_needs_its_token(oss: LocalOSS, bucket: oss2.Bucket, token: str, expected: str) -> None:
    if token:
        auth = oss2.StsAuth(STS.access_key_id, STS.access_key_secret, token)
    else:  # the STS key id and secret, signed as if they were a long-term key
        auth = oss2.Auth(STS.access_key_id, STS.access_key_secret)
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        _bucket_with(oss, bucket.bucket_name, auth).put_object("k", b"v")
    assert (caught.value.status, caught.value.code) == (403, expected)


def test_long_term_key_with_a_token_is_refused(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    auth = oss2.StsAuth("local-access-key", "local-secret-key", "some-token")
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        _bucket_with(oss, bucket.bucket_name, auth).put_object("k", b"v")
    assert caught.value.status == 403


@pytest.mark.parametrize("offset_minutes", [-16, 16])
def test_v1_clock_skew_over_15_minutes_is_refused(bucket: oss2.Bucket, offset_minutes: int) -> None:
    skewed = formatdate(time.time() + offset_minutes * 60, usegmt=True)
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.put_object("k", b"v", headers={"x-oss-date": skewed})
    assert (caught.value.status, caught.value.code) == (403, "RequestTimeTooSkewed")


def test_v1_clock_skew_within_15_minutes_is_accepted(bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"v", headers={"x-oss-date": formatdate(time.time() - 14 * 60, usegmt=True)})
    assert bucket.object_exists("k")


def test_v4_request_from_another_day_is_refused(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    """A correctly signed V4 request (the reference vector below) replayed long after it was made."""
    response = requests.put(
        f"{oss.endpoint}/{bucket.bucket_name}/incoming%2Fa%20b%2Bc.jpg?tagging=",
        headers={
            "x-oss-date": "20251120T080000Z",
            "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
            "Authorization": "OSS4-HMAC-SHA256 Credential=local-access-key/20251120/cn-hangzhou/oss/"
            "aliyun_v4_request, Signature=" + "0" * 64,
        },
        timeout=10,
    )
    assert response.status_code == 403
    assert b"RequestTimeTooSkewed" in response.content


def test_anonymous_request_is_refused(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    response = requests.get(f"{oss.endpoint}/{bucket.bucket_name}/", timeout=10)
    assert response.status_code == 403
    assert b"<Code>AccessDenied</Code>" in response.content


# Deterministic vectors (date frozen, secret "SECRET") recorded from oss2 and checked independently.
VECTOR_TIME = 1763625600.0  # Thu, 20 Nov 2025 08:00:00 GMT
SECRET_CREDENTIALS = {
    "AKID": Credential("AKID", "SECRET"),
    "STS.AKID": Credential("STS.AKID", "SECRET", "TOKEN"),
}


def _vector_request(method: str, target: str, headers: dict[str, str]) -> OssRequest:
    bucket, key, query = split_target(target)
    return OssRequest(method=method, bucket=bucket, key=key, query=query, headers=headers)


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        (
            "PUT",
            "/my-bucket/incoming%2Fa%20b%2Bc.jpg?tagging=",
            {
                "date": "Thu, 20 Nov 2025 08:00:00 GMT",
                "authorization": "OSS AKID:/SJbtu9+Cft1Poa2z87zz10K8pI=",
            },
        ),
        (
            "DELETE",
            "/my-bucket/incoming%2Fa.jpg?tagging=&versionId=CAEQ%2B%2F%3D",
            {
                "date": "Thu, 20 Nov 2025 08:00:00 GMT",
                "x-oss-security-token": "TOKEN",
                "authorization": "OSS STS.AKID:7SHGyjWfz+e6TeBnlRYQ8Mzdk/c=",
            },
        ),
        (
            "PUT",
            "/my-bucket/incoming%2Fa%20b%2Bc.jpg?tagging=",
            {
                "x-oss-date": "20251120T080000Z",
                "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
                "authorization": "OSS4-HMAC-SHA256 Credential=AKID/20251120/cn-hangzhou/oss/"
                "aliyun_v4_request, "
                "Signature=56ccab500c317bf3f5bd296e9fe36952981820cd9c14b16e383e7de4e8e3f363",
            },
        ),
        (
            "HEAD",
            "/my-bucket/incoming%2Fa.jpg",
            {
                "x-oss-date": "20251120T080000Z",
                "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
                "x-oss-security-token": "TOKEN",
                "authorization": "OSS4-HMAC-SHA256 Credential=STS.AKID/20251120/cn-hangzhou/oss/"
                "aliyun_v4_request, "
                "Signature=2fd9322437b61ff4dc2fca9db012c7da22bfb0e133fc95c8bb4878ac0fab531c",
            },
        ),
    ],
)
def test_reference_signature_vectors(method: str, target: str, headers: dict[str, str]) -> None:
    request = _vector_request(method, target, headers)
    credential = authenticate(request, SECRET_CREDENTIALS, region="cn-hangzhou", now=VECTOR_TIME)
    assert credential.access_key_id in headers["authorization"]
    request.key += "x"  # any change to what was signed breaks the signature
    with pytest.raises(OssError) as caught:
        authenticate(request, SECRET_CREDENTIALS, region="cn-hangzhou", now=VECTOR_TIME)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_v1_signs_utf8_metadata_as_raw_bytes(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    """UTF-8 user metadata travels as raw bytes; the signature covers those bytes."""
    date = formatdate(time.time(), usegmt=True)
    meta = "値 ünïcode".encode()
    resource = f"/{bucket.bucket_name}/meta.txt"
    string_to_sign = b"PUT\n\n\n" + date.encode() + b"\nx-oss-meta-note:" + meta + b"\n" + resource.encode()
    signature = base64.b64encode(
        hmac.new(b"local-secret-key", string_to_sign, hashlib.sha1).digest()
    ).decode()
    response = requests.put(
        f"{oss.endpoint}{resource}",
        data=b"x",
        headers={"Date": date, "x-oss-meta-note": meta, "Authorization": f"OSS local-access-key:{signature}"},
        timeout=10,
    )
    assert response.status_code == 200, response.content
    assert bucket.head_object("meta.txt").headers["x-oss-meta-note"].encode("latin-1") == meta


def test_v4_signed_for_another_region_is_refused(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    other = oss2.Bucket(make_auth("v4"), oss.endpoint, bucket.bucket_name, region="cn-beijing")
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        other.put_object("k", b"v")
    assert "signing region" in caught.value.message


@pytest.mark.parametrize("auth", ["v1", "v4"])
def test_replayed_signatures_only_open_what_they_signed(new_bucket: BucketFactory, auth: str) -> None:
    """A captured signed URL, replayed: for the method and object it signed it works (as in OSS, until it
    expires); moved to another object, another method or another bucket, it is refused."""
    bucket = new_bucket(auth)
    bucket.put_object("mine.txt", b"secret")
    bucket.put_object("other.txt", b"other")
    url = bucket.sign_url("GET", "mine.txt", 300)
    assert requests.get(url, timeout=10).content == b"secret"
    assert requests.get(url, timeout=10).content == b"secret"  # the same request again: same answer
    assert requests.get(url.replace("mine.txt", "other.txt"), timeout=10).status_code == 403
    assert requests.delete(url, timeout=10).status_code == 403
    assert requests.put(url, data=b"overwritten", timeout=10).status_code == 403
    assert bucket.get_object("mine.txt").read() == b"secret"
    elsewhere = new_bucket(auth)
    assert requests.get(url.replace(bucket.bucket_name, elsewhere.bucket_name), timeout=10).status_code == 403


class _VirtualHostedSession(oss2.Session):
    """Sends oss2's signed path-style requests virtual-hosted, as OSS is addressed: the bucket moves from the
    path into the Host header (`Host` may be given to name another region's endpoint)."""

    def __init__(self, host_suffix: str = "oss-cn-hangzhou.aliyuncs.com") -> None:
        super().__init__()
        self.host_suffix = host_suffix

    def do_request(self, req: oss2.http.Request, timeout: float) -> oss2.http.Response:
        scheme, _, rest = req.url.partition("://")
        authority, _, path = rest.partition("/")
        bucket, _, key = path.partition("/")
        req.url = f"{scheme}://{authority}/{key}"
        req.headers["Host"] = f"{bucket}.{self.host_suffix}"
        return super().do_request(req, timeout)


@pytest.mark.parametrize("auth", ["v1", "v4", "sts-v1", "sts-v4"])
def test_a_virtual_hosted_request_names_the_bucket_in_its_host(
    new_bucket: BucketFactory, oss: LocalOSS, auth: str
) -> None:
    path_style = new_bucket(auth)
    hosted = oss2.Bucket(
        make_auth(auth),
        oss.endpoint,
        path_style.bucket_name,
        session=_VirtualHostedSession(),
        region="cn-hangzhou",
    )
    key = ODD_KEYS[3]
    hosted.put_object(key, b"body", headers={"x-oss-tagging": "a=1"})
    assert path_style.get_object(key).read() == b"body"
    assert hosted.get_object_tagging(key).tag_set.tagging_rule == {"a": "1"}
    assert [o.key for o in oss2.ObjectIterator(hosted)] == [key]
    assert hosted.get_bucket_info().name == path_style.bucket_name


def test_a_bucket_addressed_through_another_regions_endpoint_is_refused(
    new_bucket: BucketFactory, oss: LocalOSS
) -> None:
    name = new_bucket().bucket_name
    elsewhere = _VirtualHostedSession("oss-cn-shanghai.aliyuncs.com")
    hosted = oss2.Bucket(make_auth("v1"), oss.endpoint, name, session=elsewhere)
    with pytest.raises(oss2.exceptions.AccessDenied) as refused:
        hosted.get_object("any")
    assert refused.value.details["Endpoint"] == "oss-cn-hangzhou.aliyuncs.com"
