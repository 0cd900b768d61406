"""The local cloud's RAM policy language: how statements decide (explicit Deny, then Allow, else deny),
wildcards, conditions, and that anything the evaluator does not understand is refused when it loads."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud.ram import CATALOG, PolicyError, Request, evaluate, parse_policy
from localcloud.ram.policy import MAX_POLICY_CHARACTERS

OBJECT = "acs:oss:cn-hangzhou:1234567890123456:photos/2026/a.jpg"
BUCKET = "acs:oss:cn-hangzhou:1234567890123456:photos"


def policy(*statements: dict[str, Any]) -> Any:
    return parse_policy({"Version": "1", "Statement": list(statements)}, CATALOG)


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(statements: list[dict[str, Any]], action: str, resource: str, **context: str) -> tuple[bool, bool]:
    decision = evaluate([policy(*statements)], Request(action, resource, context))
    return decision.allowed, decision.explicit_deny


def test_allow_then_implicit_deny() -> None:
    statements = [allow("oss:GetObject", "acs:oss:*:*:photos/*")]
    assert decide(statements, "oss:GetObject", OBJECT) == (True, False)
    assert decide(statements, "oss:PutObject", OBJECT) == (False, False)  # no statement: implicit
    assert decide(statements, "oss:GetObject", BUCKET) == (False, False)  # the bucket is not an object


def test_an_explicit_deny_wins_over_any_allow_in_any_policy() -> None:
    allowing = policy(allow("oss:*", "*"))
    denying = policy(deny("oss:GetObject", "acs:oss:*:*:photos/2026/*"))
    decision = evaluate([allowing, denying], Request("oss:GetObject", OBJECT))
    assert not decision.allowed and decision.explicit_deny and "statement 1" in decision.statement
    assert evaluate([allowing, denying], Request("oss:PutObject", OBJECT)).allowed


def test_wildcards_in_actions_and_resources() -> None:
    statements = [allow(["oss:Get*Tagging", "oss:List?bjects"], "acs:oss:*:*:photos/202?/*")]
    assert decide(statements, "oss:GetObjectVersionTagging", OBJECT)[0]
    assert decide(statements, "oss:ListObjects", OBJECT)[0]
    assert not decide(statements, "oss:ListObjectVersions", OBJECT)[0]
    assert not decide(statements, "oss:GetObjectTagging", OBJECT.replace("2026", "20266"))[0]  # ? is one


def test_actions_match_case_insensitively_and_resources_case_sensitively() -> None:
    statements = [allow("OSS:getobject", "acs:oss:*:*:photos/2026/*")]
    assert decide(statements, "oss:GetObject", OBJECT)[0]
    assert not decide(statements, "oss:GetObject", OBJECT.replace("photos", "Photos"))[0]


def test_not_action_and_not_resource() -> None:
    assert decide([allow(["oss:Delete*"], "*")], "oss:GetObject", OBJECT)[0] is False
    statements = [{"Effect": "Allow", "NotAction": "oss:Delete*", "Resource": "*"}]
    assert decide(statements, "oss:GetObject", OBJECT)[0]
    assert not decide(statements, "oss:DeleteObject", OBJECT)[0]
    statements = [{"Effect": "Allow", "Action": "oss:GetObject", "NotResource": "acs:oss:*:*:photos/2026/*"}]
    assert not decide(statements, "oss:GetObject", OBJECT)[0]
    assert decide(statements, "oss:GetObject", OBJECT.replace("2026", "2025"))[0]


def test_prefix_and_delimiter_conditions_on_listings() -> None:
    statements = [
        allow(
            "oss:ListObjects",
            "acs:oss:*:*:photos",
            Condition={"StringLike": {"oss:Prefix": ["", "2026/*"]}, "StringEquals": {"oss:Delimiter": "/"}},
        )
    ]
    assert decide(statements, "oss:ListObjects", BUCKET, **{"oss:prefix": "2026/03/", "oss:delimiter": "/"})[
        0
    ]
    assert decide(statements, "oss:ListObjects", BUCKET, **{"oss:prefix": "", "oss:delimiter": "/"})[0]
    assert not decide(statements, "oss:ListObjects", BUCKET, **{"oss:prefix": "2025/", "oss:delimiter": "/"})[
        0
    ]
    # every operator must hold (AND): the delimiter is missing from this request
    assert not decide(statements, "oss:ListObjects", BUCKET, **{"oss:prefix": "2026/"})[0]


def test_absent_keys_hold_only_for_negated_operators() -> None:
    positive = [allow("oss:GetObject", "*", Condition={"StringEquals": {"oss:Prefix": "x"}})]
    negated = [allow("oss:GetObject", "*", Condition={"StringNotEquals": {"oss:Prefix": "x"}})]
    assert not decide(positive, "oss:GetObject", OBJECT)[0]
    assert decide(negated, "oss:GetObject", OBJECT)[0]


def test_negated_operators_hold_only_when_no_value_matches() -> None:
    statements = [deny("oss:*", "*", Condition={"StringNotLike": {"oss:Prefix": ["a/*", "b/*"]}})]
    statements.append(allow("oss:*", "*"))
    assert decide(statements, "oss:ListObjects", BUCKET, **{"oss:prefix": "b/1"}) == (True, False)
    assert decide(statements, "oss:ListObjects", BUCKET, **{"oss:prefix": "c/1"}) == (False, True)


@pytest.mark.parametrize(
    ("operator", "key", "written", "request_value", "holds"),
    [
        ("IpAddress", "acs:SourceIp", "10.0.0.0/8", "10.1.2.3", True),
        ("IpAddress", "acs:SourceIp", "10.0.0.0/8", "192.168.0.1", False),
        ("NotIpAddress", "acs:SourceIp", "10.0.0.0/8", "192.168.0.1", True),
        ("Bool", "acs:SecureTransport", "true", "false", False),
        ("Bool", "acs:SecureTransport", False, "false", True),
        ("DateLessThan", "acs:CurrentTime", "2030-01-01T00:00:00Z", "2026-11-22T00:00:00Z", True),
        ("DateGreaterThan", "acs:CurrentTime", "2030-01-01T00:00:00Z", "2026-11-22T00:00:00Z", False),
        ("StringEqualsIgnoreCase", "acs:UserAgent", "OSS2", "oss2", True),
        ("StringEquals", "acs:AccessId", "STS.a", "STS.b", False),
    ],
)
def test_condition_operators(operator: str, key: str, written: Any, request_value: str, holds: bool) -> None:
    statements = [allow("oss:GetObject", "*", Condition={operator: {key: written}})]
    assert decide(statements, "oss:GetObject", OBJECT, **{key.lower(): request_value})[0] is holds


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"Version": "2", "Statement": []}, "Version: '2'"),
        ({"Version": "1", "Statement": [], "Id": "x"}, "unknown element 'Id'"),
        ({"Version": "1", "Statement": []}, "non-empty list of statements"),
        (
            {"Version": "1", "Statement": [allow("oss:GetObjectTagginng", "*")]},
            "statement 1.Action: 'oss:GetObjectTagginng' matches no oss action",
        ),
        (
            {"Version": "1", "Statement": [allow("log:PostLogStoreLogs", "*")]},
            "'log' action; the local cloud evaluates only fc, mns, oss actions",
        ),
        (
            {"Version": "1", "Statement": [allow("oss:GetObject", "*", Principal=["*"])]},
            "unknown element 'Principal' (RAM policies have no Principal",
        ),
        (
            {"Version": "1", "Statement": [{"Sid": "Read", "Effect": "Allow", "Action": "oss:GetObject"}]},
            "statement 1 (Sid Read): a statement has exactly one of Resource and NotResource",
        ),
        ({"Version": "1", "Statement": [allow("oss:GetObject", "*", Effect="allow")]}, "Effect: 'allow'"),
        (
            {"Version": "1", "Statement": [allow("oss:GetObject", "acs:oss:cn-hangzhou:*:photos/*")]},
            "OSS resources take only `*` there",
        ),
        ({"Version": "1", "Statement": [allow("oss:GetObject", "photos/*")]}, "is not `*` or acs:"),
        (
            {
                "Version": "1",
                "Statement": [
                    allow("oss:GetObject", "*", Condition={"StringEqualsIfExists": {"oss:Prefix": "a"}})
                ],
            },
            "operator 'StringEqualsIfExists' is not one the local cloud evaluates",
        ),
        (
            {
                "Version": "1",
                "Statement": [allow("oss:GetObject", "*", Condition={"StringEquals": {"oss:MaxKeys": "10"}})],
            },
            "condition key 'oss:MaxKeys' is not one the local cloud evaluates",
        ),
        (
            {
                "Version": "1",
                "Statement": [
                    allow("oss:GetObject", "*", Condition={"IpAddress": {"oss:Prefix": "10.0.0.0/8"}})
                ],
            },
            "'oss:Prefix' holds a string; IpAddress compares an IP address or CIDR block",
        ),
        (
            {
                "Version": "1",
                "Statement": [
                    allow("oss:GetObject", "*", Condition={"IpAddress": {"acs:SourceIp": "nowhere"}})
                ],
            },
            "'nowhere' is not an IP address or CIDR block",
        ),
        (
            {"Version": "1", "Statement": [allow([f"oss:GetObject{'?' * 40}{i}" for i in range(200)], "*")]},
            f"RAM allows at most {MAX_POLICY_CHARACTERS}",
        ),
    ],
)
def test_what_the_evaluator_does_not_understand_is_refused(document: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(document, CATALOG)
    assert message in str(raised.value)


ALIASED = (
    "acs:oss:cn-hangzhou:1234567890123456:other/x:autotag-demo/y"  # bucket `other`, key x:autotag-demo/y
)


def test_an_allowed_resource_wildcard_never_reaches_across_a_field() -> None:
    """`*` matches any run of characters, but the ARN's fields (acs:<service>:<region>:<account>:<relative
    id>) are matched each on its own in an Allow, so a grant on one bucket's objects cannot cover the key
    `x:autotag-demo/y` of another bucket; a key's own `:` stays within the last field."""
    grant = [allow("oss:GetObject", "acs:oss:*:*:autotag-demo/*")]
    assert decide(grant, "oss:GetObject", ALIASED) == (False, False)
    assert decide(grant, "oss:GetObject", "acs:oss:cn-hangzhou:1234567890123456:autotag-demo/x:y/z")[0]
    everything = [allow("oss:GetObject", "acs:oss:*:*:*")]
    assert decide(everything, "oss:GetObject", ALIASED)[0]


def test_a_denied_resource_wildcard_reaches_as_far_as_either_reading_does() -> None:
    """Where RAM's documentation is silent (whether `*` may run past a `:`), the local cloud takes the
    stricter reading: an Allow reaches only within fields, a Deny (and an Allow's NotResource) as far as a
    plain match over the whole ARN goes. What the local cloud allows, RAM allows under either reading."""
    refusal = [allow("oss:*", "*"), deny("oss:GetObject", "acs:oss:*:*:autotag-demo/*")]
    assert decide(refusal, "oss:GetObject", ALIASED) == (False, True)
    everything_but = [
        {"Effect": "Allow", "Action": "oss:GetObject", "NotResource": "acs:oss:*:*:autotag-demo/*"}
    ]
    assert decide(everything_but, "oss:GetObject", ALIASED) == (False, False)
    assert decide(everything_but, "oss:GetObject", "acs:oss:cn-hangzhou:1:other/y")[0]
    denied_but = [
        allow("oss:*", "*"),
        {"Effect": "Deny", "Action": "oss:GetObject", "NotResource": "acs:oss:*:*:autotag-demo/*"},
    ]
    assert decide(denied_but, "oss:GetObject", ALIASED) == (False, True)
