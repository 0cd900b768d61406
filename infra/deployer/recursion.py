"""Triggers that would receive events the functions themselves cause.

A function whose OSS trigger receives the events of its own writes invokes itself without end: that
template is refused. A trigger that receives another function's writes (the expiry sweep's checkpoints)
costs one extra invocation per write: that is a warning, unless the receiving function ignores keys
under that writer's state prefix (its own AUTOTAG_STATE_PREFIX is the same), as the shipped template's
upload function does. Tagging calls cause no OSS events, so tagging never triggers the upload function
again."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from localcloud.fc.template import Template

from .calls import events_caused

DEFAULT_STATE_PREFIX = ".autotag/"


@dataclass(frozen=True)
class Finding:
    level: str  # error or warning
    message: str


def _receives(patterns: list[str], event: str) -> bool:
    return any(fnmatch.fnmatchcase(f"oss:{event}", pattern) for pattern in patterns)


def recursion_findings(template: Template) -> list[Finding]:
    findings: list[Finding] = []
    causes = {name: events_caused(spec.code_uri, spec.handler) for name, spec in template.functions.items()}
    for name, spec in template.functions.items():
        for trigger in (t for t in spec.triggers if t.type == "OSS"):
            prefix, _suffix = trigger.key_filter
            for writer, events in causes.items():
                hits = sorted(e for e in events if _receives(trigger.events, e))
                written = (
                    template.functions[writer].environment.get("AUTOTAG_STATE_PREFIX") or DEFAULT_STATE_PREFIX
                )
                if not hits or (prefix and not (prefix.startswith(written) or written.startswith(prefix))):
                    continue
                where = f"{', '.join(hits)} under {written} in {trigger.bucket}"
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
