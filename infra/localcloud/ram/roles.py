"""RAM roles of the local cloud: each FC service of template.yml gets a role carrying the service's
`Policies`, and a function runs with STS credentials of its service's role, as on Function Compute.

A role is named after its service, `acs:ram::<account-id>:role/<service>`, which is also the role ARN
`autotag deploy` gives a service by default. The session credentials of a role are derived from its ARN,
so every process of the local cloud (the OSS and FC API of `autotag local up`, a function run in-process by
`autotag invoke`) agrees on them without sharing state. They are local-only values, never real secrets."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .catalog import CATALOG
from .policy import Policy, PolicyError, parse_policy

LOCAL_ACCOUNT_ID = "1234567890123456"


@dataclass(frozen=True)
class Role:
    arn: str
    policies: tuple[Policy, ...]

    @property
    def name(self) -> str:
        return self.arn.rpartition("/")[2]


@dataclass(frozen=True)
class RoleSession:
    """The STS credentials FC hands a function running under a role."""

    access_key_id: str
    access_key_secret: str
    security_token: str


def role_arn(name: str, account_id: str = LOCAL_ACCOUNT_ID) -> str:
    return f"acs:ram::{account_id}:role/{name}"


def session_for(role: Role | str) -> RoleSession:
    arn = role.arn if isinstance(role, Role) else role
    digest = hashlib.sha256(f"oss-autotag local role session\0{arn}".encode()).hexdigest()
    name = arn.rpartition("/")[2]
    return RoleSession(
        f"STS.local-role.{name}", f"local-role-secret-{digest[:24]}", f"local-role-token-{digest[24:]}"
    )


def parse_policies(policies: Any, where: str) -> tuple[Policy, ...]:
    """A service's `Policies` (one document or a list of them), every statement checked; system policy
    names are refused, since the local cloud cannot see what they grant."""
    documents: Sequence[Any] = policies if isinstance(policies, list) else [policies]
    parsed = []
    for index, document in enumerate(documents):
        at = f"{where}[{index}]"
        if isinstance(document, str):
            raise PolicyError(
                f"{at}: {document!r} names a system policy, whose statements the local cloud cannot see; "
                "write the statements out as a policy document"
            )
        parsed.append(parse_policy(document, CATALOG, at))
    return tuple(parsed)
