"""Injected faults, latency and per-API request counters, through the Python API and the admin path."""

from __future__ import annotations

import oss2
import pytest
import requests

from localcloud.oss import FaultRule, LocalOSS


def _counts(oss: LocalOSS) -> dict[str, int]:
    return dict(oss.conditions.requests)


def test_requests_are_counted_per_api(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    oss.conditions.reset_counters()
    bucket.put_object("k", b"x")
    bucket.head_object("k")
    bucket.head_object("k")
    bucket.get_object_tagging("k")
    assert _counts(oss) == {"PutObject": 1, "HeadObject": 2, "GetObjectTagging": 1}


@pytest.mark.parametrize(
    ("kind", "status", "code"), [("error", 500, "InternalError"), ("throttle", 503, "TotalQpsLimitExceeded")]
)
def test_injected_error_responses(
    oss: LocalOSS, bucket: oss2.Bucket, kind: str, status: int, code: str
) -> None:
    bucket.put_object("k", b"x")
    oss.conditions.set_faults([FaultRule(kind, 1.0, frozenset({"HeadObject"}))])
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.head_object("k")
    assert caught.value.status == status
    assert caught.value.code == code  # carried in x-oss-err on HEAD
    assert bucket.get_object("k").read() == b"x"  # other APIs unaffected


def test_injected_connection_reset(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"x")
    oss.conditions.set_faults([FaultRule("reset", 1.0, frozenset({"GetObjectTagging"}))])
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.get_object_tagging("k")
    oss.conditions.set_faults([])
    assert bucket.get_object_tagging("k").tag_set.tagging_rule == {}


def test_fault_rate_is_a_probability(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    bucket.put_object("k", b"x")
    oss.conditions.set_faults([FaultRule("error", 0.3, frozenset({"HeadObject"}))], seed=7)
    failures = 0
    for _ in range(200):
        try:
            bucket.head_object("k")
        except oss2.exceptions.ServerError:
            failures += 1
    assert 30 <= failures <= 90  # 60 expected; seeded, so the figure is stable


def test_fault_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="fault kind"):
        FaultRule("explode", 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultRule("error", 1.5)


def test_admin_api_sets_conditions_and_reports_stats(oss: LocalOSS, bucket: oss2.Bucket) -> None:
    admin = f"{oss.endpoint}/_admin"
    token = {"Authorization": f"Bearer {oss.admin_token}"}
    requests.post(f"{admin}/stats/reset", headers=token, timeout=10)
    answer = requests.put(
        f"{admin}/conditions",
        json={"latency_ms": 1, "faults": [{"kind": "throttle", "rate": 1, "apis": ["PutObjectTagging"]}]},
        headers=token,
        timeout=10,
    )
    assert answer.status_code == 200
    assert oss.conditions.latency_seconds == pytest.approx(0.001)
    bucket.put_object("k", b"x")
    with pytest.raises(oss2.exceptions.ServerError):
        bucket.put_object_tagging("k", oss2.models.Tagging(oss2.models.TaggingRule()))
    stats = requests.get(f"{admin}/stats", headers=token, timeout=10).json()
    assert stats["requests"] == {"PutObject": 1, "PutObjectTagging": 1}
    assert stats["injected"] == {"throttle": 1}
    bad = requests.put(
        f"{admin}/conditions", json={"faults": [{"kind": "nope", "rate": 1}]}, headers=token, timeout=10
    )
    assert bad.status_code == 400 and "fault kind" in bad.json()["error"]
    assert requests.get(f"{admin}/nothing-here", headers=token, timeout=10).status_code == 404
