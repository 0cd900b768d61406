"""What a role's credentials may do in one request to the local OSS (`OssRequest.access`): RAM's decision
on an OSS resource `acs:oss:<region>:<account-id>:<bucket>[/<key>]`, and the 403 `AccessDenied` OSS
answers a denial with — the EC of an explicit or an implicit deny, and an `AccessDeniedDetail` naming the
action. `authorization` decides which actions a request needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..ram import Decision, Request, Role, evaluate
from .errors import OssError

Level = Literal["service", "bucket", "object"]
EXPLICIT_DENY_EC = "0003-00000201"
IMPLICIT_DENY_EC = "0003-00000202"
BATCH_DENY_EC = "0003-00000204"

# What a request that OSS would refuse for lack of a right is told, by the level of its resource.
_IMPLICIT_MESSAGES = {
    "service": "You are forbidden to list buckets.",
    "bucket": "The bucket you access does not belong to you.",
    "object": "You have no right to access this object because of bucket acl.",
}
_EXPLICIT_MESSAGE = "Access denied by the RAM policy of the requester."


@dataclass
class Access:
    """What a role may do in this request; `require` raises the OssError OSS would answer with."""

    role: Role
    region: str
    account_id: str
    context: dict[str, str] = field(default_factory=dict)

    def resource(self, bucket: str, key: str | None = None) -> str:
        relative = "*" if not bucket else bucket if key is None else f"{bucket}/{key}"
        return f"acs:oss:{self.region}:{self.account_id}:{relative}"

    def decide(self, action: str, bucket: str, key: str | None = None) -> Decision:
        return evaluate(self.role.policies, Request(action, self.resource(bucket, key), self.context))

    def require(self, action: str, bucket: str, key: str | None = None, *, batch: bool = False) -> None:
        decision = self.decide(action, bucket, key)
        if decision.allowed:
            return
        level: Level = "service" if not bucket else "bucket" if key is None else "object"
        ec = BATCH_DENY_EC if batch else EXPLICIT_DENY_EC if decision.explicit_deny else IMPLICIT_DENY_EC
        raise OssError(
            403,
            "AccessDenied",
            _EXPLICIT_MESSAGE if decision.explicit_deny else _IMPLICIT_MESSAGES[level],
            ec=ec,
            AccessDeniedDetail={
                "PolicyType": "AccountLevelIdentityBasedPolicy",
                "AuthPrincipalType": "AssumedRoleUser",
                "AuthPrincipalDisplayName": self.role.arn,
                "NoPermissionType": "ExplicitDeny" if decision.explicit_deny else "ImplicitDeny",
                "AuthAction": action,
            },
        )
