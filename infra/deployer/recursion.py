"""Triggers that would receive events the functions themselves cause.

A function whose OSS trigger — or EventBridge trigger, directly or through a rule routing OSS events to the
queue it reads — receives the events of its own writes invokes itself without end: that template is
refused. A trigger that receives another function's writes (the expiry sweep's checkpoints)
costs one extra invocation per write: that is a warning, unless the receiving function ignores keys
under that writer's state prefix (its own AUTOTAG_STATE_PREFIX is the same), as the shipped template's
upload function does. Another function whose role grants no such write in the trigger's bucket (read
from its policies' Allow statements) causes nothing there: the backfill function writes only
its completion reports, in the state bucket. Tagging calls cause no OSS events, so tagging never triggers
the upload function again."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from localcloud.fc.eventbridge import DEFAULT, matches
from localcloud.fc.template import Template, TriggerSpec

from .calls import events_caused

DEFAULT_STATE_PREFIX = ".autotag/"


@dataclass(frozen=True)
class Finding:
    level: str  # error or warning
    message: str


def _receives(patterns: list[str], event: str) -> bool:
    return any(fnmatch.fnmatchcase(f"oss:{event}", pattern) for pattern in patterns)


def _eventbridge_receives(pattern: dict[str, object], event: str, written: str) -> str | None:
    """Where an event pattern receives `event` for a key under `written`, or None: tried with the subject
    of each bucket the pattern names (`subject` prefixes ending at a bucket), or any bucket."""
    subjects = pattern.get("subject")
    buckets = [
        condition["prefix"]
        for condition in (subjects if isinstance(subjects, list) else [])
        if isinstance(condition, dict) and str(condition.get("prefix", "")).endswith("/")
    ] or ["acs:oss:cn-hangzhou:0:any-bucket/"]
    for bucket in buckets:
        cloud_event = {
            "source": "acs.oss",
            "type": f"oss:{event}",
            "subject": f"{bucket}{written}x",
            "data": {"eventName": event, "oss": {"object": {"key": f"{written}x"}}},
        }
        if matches(pattern, cloud_event):
            return bucket.rsplit(":", 1)[-1].rstrip("/")
    return None


def _receiving(template: Template, trigger: TriggerSpec, event: str, written: str) -> str | None:
    """Where `trigger` receives `event` for keys under `written`, described; None when it does not."""
    if trigger.type == "OSS":
        prefix, _suffix = trigger.key_filter
        if not _receives(trigger.events, event):
            return None
        if prefix and not (prefix.startswith(written) or written.startswith(prefix)):
            return None
        return trigger.bucket
    if trigger.type != "EventBridge" or not trigger.eventbridge.enabled:
        return None
    config = trigger.eventbridge
    if config.source_type == DEFAULT:
        return _eventbridge_receives(config.pattern, event, written)
    for route in template.routes:
        if route.enabled and route.queue == config.queue:
            bucket = _eventbridge_receives(route.pattern, event, written)
            if bucket is not None:
                return f"{bucket} (through rule {route.name} and queue {route.queue})"
    return None


# The RAM action each caused event needs: a write the role may not make causes no event.
ACTION_OF_EVENT = {
    "ObjectCreated:PutObject": "oss:PutObject",
    "ObjectCreated:CopyObject": "oss:PutObject",
    "ObjectCreated:AppendObject": "oss:PutObject",
    "ObjectCreated:CompleteMultipartUpload": "oss:PutObject",
    "ObjectCreated:PutSymlink": "oss:PutObject",
    "ObjectRemoved:DeleteObject": "oss:DeleteObject",
    "ObjectRemoved:DeleteObjects": "oss:DeleteObject",
}


def _may_write(template: Template, writer: str, event: str, where: str, written: str) -> bool:
    """Whether an Allow statement of `writer`'s role grants the write behind `event` in the bucket `where`
    names (its first word). True when that cannot be told (no role or action known): the finding stays.
    Read from the policies' text, Action and Resource as wildcards, as a reviewer would."""
    role = template.roles.get(template.functions[writer].role)
    action = ACTION_OF_EVENT.get(event)
    bucket = where.split(" ", 1)[0]
    if role is None or action is None or bucket in ("", "any-bucket"):
        return True
    return any(
        statement.effect == "Allow"
        and not statement.not_actions
        and not statement.not_resources
        and any(fnmatch.fnmatchcase(action, pattern) for pattern in statement.actions)
        and any(_names_bucket(resource, bucket, written) for resource in statement.resources)
        for policy in role.policies
        for statement in policy.statements
    )


def _names_bucket(resource: str, bucket: str, written: str) -> bool:
    """Whether an OSS resource pattern (`acs:oss:<region>:<account>:<bucket>/<key>`) can name a key under
    `written` in `bucket`."""
    if resource == "*":
        return True
    parts = resource.split(":", 4)
    if len(parts) != 5 or parts[:2] != ["acs", "oss"]:
        return False
    resource_bucket, _, key = parts[4].partition("/")
    return fnmatch.fnmatchcase(bucket, resource_bucket) and (
        fnmatch.fnmatchcase(f"{written}x", key)
        or key.startswith(written)
        or written.startswith(key.rstrip("*"))
    )


def recursion_findings(template: Template) -> list[Finding]:
    findings: list[Finding] = []
    causes = {name: events_caused(spec.code_uri, spec.handler) for name, spec in template.functions.items()}
    for name, spec in template.functions.items():
        for trigger in spec.triggers:
            for writer, events in causes.items():
                written = (
                    template.functions[writer].environment.get("AUTOTAG_STATE_PREFIX") or DEFAULT_STATE_PREFIX
                )
                hits = {e: where for e in events if (where := _receiving(template, trigger, e, written))}
                if writer != name:  # another function's writes: only those its role may make (a loop of a
                    # function's own is refused whatever its role says)
                    hits = {e: w for e, w in hits.items() if _may_write(template, writer, e, w, written)}
                if not hits:
                    continue
                where = f"{', '.join(sorted(hits))} under {written} in {sorted(set(hits.values()))[0]}"
                receives = f"{name}'s trigger {trigger.name} receives {where}"
                ignored = spec.environment.get("AUTOTAG_STATE_PREFIX") or DEFAULT_STATE_PREFIX
                if writer != name and ignored == written:
                    continue  # the receiver drops those events at once: no work, no loop
                if writer == name:
                    message = (
                        f"{receives}, which {name} itself causes: every invocation would invoke it again. "
                        f"Give the trigger a prefix outside {written}."
                    )
                    findings.append(Finding("error", message))
                else:
                    message = (
                        f"{receives}, written by {writer}: one extra invocation per write, which {name} "
                        "ignores. A trigger prefix, or state in another bucket, avoids it."
                    )
                    findings.append(Finding("warning", message))
    return findings
