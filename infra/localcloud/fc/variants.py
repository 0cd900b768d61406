"""template.yml with one way of OSS event delivery chosen, as a user edits it to move a deployment
(docs/tag-on-upload.md, "Moving a deployment to EventBridge"): for the tests and benchmarks that run the
same functions behind each delivery."""

from __future__ import annotations

from pathlib import Path

import yaml

DELIVERIES = ("native", "eventbridge", "batched")


def delivery_variant(
    template: Path,
    code: Path,
    folder: Path,
    delivery: str,
    count: int | None = None,
    seconds: float | None = None,
) -> Path:
    """`template` with `delivery` ("native", "eventbridge" or "batched") chosen and every function's
    CodeUri at `code`, written into `folder`; for batches, the window `count` / `seconds` instead of the
    template's when given."""
    if delivery not in DELIVERIES:
        raise ValueError(f"delivery {delivery!r}: one of {', '.join(DELIVERIES)}")
    document = yaml.safe_load(template.read_text(encoding="utf-8"))
    resources = document["Resources"]
    for service in resources.values():
        for body in service.values():
            if isinstance(body, dict) and body.get("Type") == "Aliyun::Serverless::Function":
                body["Properties"]["CodeUri"] = str(code)
    events = resources["oss-autotag"]["tag-on-upload"]["Events"]
    if delivery != "native":
        del events["on-object-created"]
    if delivery == "eventbridge":
        events["oss-events-via-eventbridge"]["Properties"]["TriggerEnable"] = True
    if delivery == "batched":
        resources["oss-events-to-queue"]["Properties"]["Status"] = "ENABLE"
        batched = events["oss-events-batched"]["Properties"]
        batched["TriggerEnable"] = True
        window = batched["RunOptions"]["BatchWindow"]
        window["CountBasedWindow"] = window["CountBasedWindow"] if count is None else count
        window["TimeBasedWindow"] = window["TimeBasedWindow"] if seconds is None else seconds
    path = folder / f"template-{delivery}.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
