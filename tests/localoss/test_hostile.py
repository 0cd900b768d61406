"""A hostile or careless local process against the local OSS: oversized, smuggled, replayed and malformed
requests, header injection, unbounded connections. Each answer is the 4xx OSS gives, never a 500, a hang
or a changed object."""

from __future__ import annotations

import base64
import hashlib
import socket
import time

import oss2
import pytest
import requests

from localcloud.oss import LocalOSS


def _raw(oss: LocalOSS, request: bytes, timeout: float = 10) -> bytes:
    """Send bytes as they are and read until the server closes or stops sending."""
    with socket.create_connection((oss.host, oss.port), timeout=timeout) as connection:
        connection.sendall(request)
        chunks = []
        try:
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


@pytest.mark.parametrize("parameter", ["partNumber", "position", "max-keys", "Expires"])
def test_unicode_digits_are_400_not_500(bucket: oss2.Bucket, parameter: str) -> None:
    superscript_two = "\u00b2"  # str.isdigit() says yes, int() says no
    if parameter == "max-keys":
        url = bucket.sign_url("GET", "k", 60).split("?")[0].rsplit("/", 1)[0] + "/"
        answer = requests.get(url, params={"max-keys": superscript_two}, timeout=10)
        assert answer.status_code in (400, 403)  # anonymous listing is refused first, never a 500
        with pytest.raises(oss2.exceptions.ServerError) as caught:
            bucket.list_objects(max_keys=superscript_two)  # type: ignore[arg-type]
        assert caught.value.status == 400
        return
    if parameter == "Expires":
        url = bucket.sign_url("GET", "k", 60)
        answer = requests.get(url.replace("Expires=", "Expires=" + superscript_two), timeout=10)
        assert answer.status_code == 403
        return
    if parameter == "partNumber":
        upload = bucket.init_multipart_upload("m").upload_id
        with pytest.raises(oss2.exceptions.ServerError) as caught:
            bucket.upload_part("m", upload, superscript_two, b"x")  # type: ignore[arg-type]
    else:
        with pytest.raises(oss2.exceptions.ServerError) as caught:
            bucket.append_object("a", superscript_two, b"x")  # type: ignore[arg-type]
    assert caught.value.status == 400


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_content_md5_binds_tagging_and_complete_bodies(bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"x")
    signed = b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>"
    forged = b"<Tagging><TagSet><Tag><Key>a</Key><Value>2</Value></Tag></TagSet></Tagging>"
    headers = {"Content-MD5": _md5(signed), "Content-Type": "application/xml"}
    url = bucket.sign_url("PUT", "k", 60, headers=headers, params={"tagging": ""})
    assert requests.put(url, data=forged, headers=headers, timeout=10).status_code == 400
    assert bucket.get_object_tagging("k").tag_set.tagging_rule == {}
    assert requests.put(url, data=signed, headers=headers, timeout=10).status_code == 200
    assert bucket.get_object_tagging("k").tag_set.tagging_rule == {"a": "1"}

    upload = bucket.init_multipart_upload("m").upload_id
    one = bucket.upload_part("m", upload, 1, b"a" * 100).etag
    two = bucket.upload_part("m", upload, 2, b"b" * 100).etag
    both = f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{one}</ETag></Part>"
    both += f"<Part><PartNumber>2</PartNumber><ETag>{two}</ETag></Part></CompleteMultipartUpload>"
    first = f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{one}</ETag></Part>"
    first += "</CompleteMultipartUpload>"
    headers = {"Content-MD5": _md5(both.encode()), "Content-Type": "application/xml"}
    url = bucket.sign_url("POST", "m", 60, headers=headers, params={"uploadId": upload})
    answer = requests.post(url, data=first.encode(), headers=headers, timeout=10)
    assert answer.status_code == 400 and "InvalidDigest" in answer.text
    assert not bucket.object_exists("m")


def test_presigned_v4_urls_live_at_most_seven_days(new_bucket: oss2.Bucket) -> None:
    bucket = new_bucket("v4")
    bucket.put_object("k", b"x")
    week = 7 * 24 * 3600
    assert requests.get(bucket.sign_url("GET", "k", week), timeout=10).status_code == 200
    answer = requests.get(bucket.sign_url("GET", "k", week + 1), timeout=10)
    assert answer.status_code in (400, 403), answer.text
    answer = requests.get(bucket.sign_url("GET", "k", 10 * 365 * 24 * 3600), timeout=10)
    assert answer.status_code in (400, 403), answer.text


def test_two_content_lengths_are_refused(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    smuggled = b"GET /" + bucket.bucket_name.encode() + b"/ HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"x" * 4
    request = (
        f"PUT /{bucket.bucket_name}/k HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        f"Content-Length: {len(body) + len(smuggled)}\r\n\r\n"
    ).encode()
    answer = _raw(oss, request + body + smuggled, timeout=5)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1  # nothing after the first request was served


def test_unauthenticated_body_is_not_read(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    # A request that fails authentication is answered before its (huge, announced) body arrives.
    head = f"PUT /{bucket.bucket_name}/big HTTP/1.1\r\nHost: x\r\nContent-Length: {300 * 1024**2}\r\n\r\n"
    with socket.create_connection((oss.host, oss.port), timeout=10) as connection:
        connection.sendall(head.encode() + b"x" * 1024)
        answer = connection.recv(65536)
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]


def test_object_larger_than_oss_allows_is_refused_unread(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    headers = {"Content-Length": str(5 * 1024**3 + 1)}
    url = bucket.sign_url("PUT", "huge", 60)
    path = url.split(f"{oss.port}", 1)[1]
    head = f"PUT {path} HTTP/1.1\r\nHost: {oss.host}:{oss.port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    answer = _raw(oss, head.encode())  # the server answers and hangs up without waiting for 5 GB
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"EntityTooLarge" in answer


def test_crlf_in_response_content_type_is_refused(bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"x")
    url = bucket.sign_url("GET", "k", 60, params={"response-content-type": "text/plain\r\nSet-Cookie: a=b"})
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 400
    assert "Set-Cookie" not in answer.headers


def test_crlf_in_post_object_metadata_is_refused(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    from localcloud.oss import DEFAULT_CREDENTIALS
    from localcloud.oss.postform import signed_form

    form = signed_form(DEFAULT_CREDENTIALS[0], "posted", fields={"x-oss-meta-a": "1\r\nSet-Cookie: a=b"})
    answer = requests.post(
        f"{oss.endpoint}/{bucket.bucket_name}/", data=form, files={"file": ("f", b"x")}, timeout=10
    )
    assert answer.status_code == 400, answer.text
    assert not bucket.object_exists("posted")


def test_connections_are_bounded_and_idle_ones_time_out() -> None:
    # The bound, on a server whose idle connections outlive any test (so none frees a place meanwhile).
    with LocalOSS(max_connections=4, idle_timeout=600.0) as oss:
        held = [socket.create_connection((oss.host, oss.port)) for _ in range(4)]
        try:
            answer = _raw(oss, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=60)
            assert answer.startswith(b"HTTP/1.1 503"), answer[:200]  # refused, not queued behind them
        finally:
            for connection in held:
                connection.close()
    with LocalOSS(max_connections=4, idle_timeout=1.0) as oss:
        idle = [socket.create_connection((oss.host, oss.port)) for _ in range(4)]
        try:
            for connection in idle:  # each is closed by the server: recv ends instead of waiting
                connection.settimeout(300)
                assert connection.recv(10) == b""
            answer = _raw(oss, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=60)
            assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
        finally:
            for connection in idle:
                connection.close()


def test_a_request_head_sent_slowly_is_cut_off() -> None:
    with LocalOSS(idle_timeout=1.0) as oss, socket.create_connection((oss.host, oss.port)) as connection:
        connection.settimeout(5)
        closed = False
        # One byte every 0.3 s: each read is quick and the head never completes, so only a deadline for the
        # whole head (1 s) ends the connection; one reset by every byte would keep it open to the last.
        for _ in range(2000):
            try:
                connection.sendall(b"G")
            except OSError:
                closed = True
                break
            time.sleep(0.3)
        assert closed, "a head sent a byte at a time was never cut off"


def test_admin_api_needs_the_token(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    subscription = {"bucket": bucket.bucket_name, "events": ["oss:ObjectCreated:*"], "url": "http://x/"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": oss.admin_token or ""}):
        answer = requests.post(
            f"{oss.endpoint}/_admin/subscriptions", json=subscription, headers=headers, timeout=10
        )
        assert answer.status_code == 401
        answer = requests.put(
            f"{oss.endpoint}/_admin/conditions",
            json={"faults": [{"kind": "error", "rate": 1}]},
            headers=headers,
            timeout=10,
        )
        assert answer.status_code == 401
    assert oss.notifier.subscriptions() == [] and oss.conditions.faults == []
    token = {"Authorization": f"Bearer {oss.admin_token}"}
    assert requests.get(f"{oss.endpoint}/_admin/stats", headers=token, timeout=10).status_code == 200


def test_admin_api_can_be_opened_explicitly() -> None:
    with LocalOSS(admin_token=None) as oss:
        assert requests.get(f"{oss.endpoint}/_admin/stats", timeout=10).status_code == 200


def test_autotag_local_oss_prints_the_admin_token_it_requires() -> None:
    from localcloud.oss.process import spawn

    server, endpoint, token = spawn()
    try:
        assert requests.get(f"{endpoint}/_admin/stats", timeout=10).status_code == 401
        answer = requests.get(
            f"{endpoint}/_admin/stats", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answer.status_code == 200 and answer.json()["total"] == 0
    finally:
        server.terminate()
        server.wait(300)


def test_batch_delete_of_unclosed_objects_is_refused_promptly(bucket: oss2.Bucket) -> None:
    # 320 KB of `<Object>` never closed: a backtracking parser takes quadratic time over it.
    body = b'<?xml version="1.0" encoding="UTF-8"?><Delete>' + b"<Object><Key>k" * 23000
    headers = {"Content-MD5": _md5(body), "Content-Type": "application/xml"}
    request = oss2.http.Request(
        "POST", f"{bucket.endpoint}/{bucket.bucket_name}/", data=body, params={"delete": ""}, headers=headers
    )
    bucket.auth._sign_request(request, bucket.bucket_name, "")
    answer = bucket.session.do_request(request, timeout=10)  # frozen for a minute before
    assert answer.status == 400 and b"MalformedXML" in answer.read()


def test_a_read_that_announces_a_body_it_never_sends_is_answered(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"body")
    url = bucket.sign_url("GET", "k", 60)
    path = url.split(f"{oss.port}", 1)[1]
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n".encode()
    answer = _raw(oss, request, timeout=5)  # the server answers and closes; it does not wait for 9 bytes
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"body")
