"""RAM authorisation of FC 2.0 API requests made with a role's credentials, as Function Compute does it:
each API has one action, checked on `acs:fc:<region>:<account-id>:services/<service>[.<qualifier>]/...`
(FC 2.0 "Policies and sample policies"; the table is in docs/least-privilege.md). The account's own
AccessKey is allowed everything."""

from __future__ import annotations

import re

from ..ram import Request, Role, evaluate

_PATH = re.compile(
    r"^/[0-9-]+/services(?:/(?P<service>[^/]+)"
    r"(?:/functions(?:/(?P<function>[^/]+)(?:/(?P<leaf>code|invocations|async-invoke-config|triggers)"
    r"(?:/(?P<trigger>[^/]+))?)?)?)?)?/?$"
)
_VERBS = {"GET": "Get", "PUT": "Update", "DELETE": "Delete"}


class FcAccessDenied(Exception):
    def __init__(self, action: str, resource: str) -> None:
        super().__init__(f"the caller is not authorized to perform '{action}' on resource '{resource}'")


def action_and_resource(method: str, path: str) -> tuple[str, str] | None:
    """The RAM action and the resource (after `acs:fc:<region>:<account-id>:`) an API call is checked
    on; None for a path that is no FC API (answered as such)."""
    match = _PATH.match(path)
    if not match:
        return None
    service, function, leaf, trigger = match["service"], match["function"], match["leaf"], match["trigger"]
    if service is None:
        return ("fc:ListServices" if method == "GET" else "fc:CreateService"), "services/*"
    if function is None:
        if method == "POST":  # a function created in the service
            return "fc:CreateFunction", f"services/{service}/functions/*"
        if method == "GET" and path.rstrip("/").endswith("/functions"):
            return "fc:ListFunctions", f"services/{service}/functions/*"
        return f"fc:{_VERBS.get(method, method.title())}Service", f"services/{service}"
    base = f"services/{service}/functions/{function}"
    if leaf is None:
        return f"fc:{_VERBS.get(method, method.title())}Function", base
    if leaf == "code":
        return "fc:GetFunctionCode", f"{base}/code"
    if leaf == "invocations":
        return "fc:InvokeFunction", base
    if leaf == "async-invoke-config":
        verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, method.title())
        return f"fc:{verb}FunctionAsyncInvokeConfig", base
    if trigger is None:
        return ("fc:ListTriggers" if method == "GET" else "fc:CreateTrigger"), f"{base}/triggers/*"
    return f"fc:{_VERBS.get(method, method.title())}Trigger", f"{base}/triggers/{trigger}"


def authorize(role: Role | None, method: str, path: str, region: str, account_id: str) -> None:
    """Raise FcAccessDenied unless `role` (None: the account's AccessKey) may make this call."""
    if role is None:
        return
    found = action_and_resource(method, path)
    if found is None:
        return  # not an FC API: the API answers 404 itself
    action, relative = found
    resource = f"acs:fc:{region}:{account_id}:{relative}"
    if not evaluate(role.policies, Request(action, resource)).allowed:
        raise FcAccessDenied(action, resource)
