"""The local cloud's RAM: policy documents evaluated as Alibaba Cloud does, and the roles FC services run
under. The local OSS and the local FC API authorise every request made with a role's credentials."""

from .catalog import CATALOG, Catalog
from .policy import Decision, Policy, PolicyError, Request, evaluate, parse_policy
from .roles import LOCAL_ACCOUNT_ID, Role, RoleSession, parse_policies, role_arn, session_for

__all__ = [
    "CATALOG",
    "LOCAL_ACCOUNT_ID",
    "Catalog",
    "Decision",
    "Policy",
    "PolicyError",
    "Request",
    "Role",
    "RoleSession",
    "evaluate",
    "parse_policies",
    "parse_policy",
    "role_arn",
    "session_for",
]
