"""Soak: many uploads through every upload path at once, with OSS failing 20% of the function's requests
(500, 503 throttling, connection resets) and function instances crashing at random before or after the
handler runs. At the end every object is correctly tagged or its event is in the dead-letter store — and
after a replay every object is tagged: 0 silent drops, 0 uploader tags lost or changed.

The CI run is small; `AUTOTAG_SOAK_OBJECTS=3000 pytest tests/e2e/test_soak.py` runs the long one."""

from __future__ import annotations

import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import oss2

from autotag.ownership import Ownership, read_record
from autotag_cli.replay import with_provenance
from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.oss import FaultRule, LocalOSS

ROOT = Path(__file__).parents[2]
OBJECTS = int(os.environ.get("AUTOTAG_SOAK_OBJECTS", "120"))
FUNCTION_APIS = frozenset({"HeadObject", "GetObjectTagging", "PutObjectTagging"})
KIND = {"jpg": "image", "mp4": "video", "csv": "data", "log": "log", "pdf": "document"}


def upload(bucket: oss2.Bucket, index: int) -> tuple[str, dict[str, str]]:
    """One object through one of the upload paths; (key, the uploader's own tags)."""
    extension = list(KIND)[index % len(KIND)]
    key = f"soak/{index:05d} odd+key%.{extension}"
    mine = {"owner-team": f"t{index % 7}"} if index % 3 == 0 else {}
    headers = {"x-oss-tagging": "&".join(f"{k}={v}" for k, v in mine.items())} if mine else {}
    path = index % 5
    if path == 0:
        bucket.put_object(key, b"x" * 10, headers=headers)
    elif path == 1:
        bucket.put_object(f"{key}.src", b"x", headers=headers)
        bucket.copy_object(bucket.bucket_name, f"{key}.src", key)  # tags copied (COPY)
        bucket.delete_object(f"{key}.src")
    elif path == 2:
        bucket.append_object(key, 0, b"a", headers=headers)
        bucket.append_object(key, 1, b"b")
    elif path == 3:
        upload_id = bucket.init_multipart_upload(key, headers=headers).upload_id
        part = bucket.upload_part(key, upload_id, 1, b"m" * 100)
        bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, part.etag)])
    else:
        bucket.put_object(f"{key}.target", b"t")
        bucket.put_symlink(f"{key}.target", key, headers=headers)
        bucket.delete_object(f"{key}.target")
    return key, mine


def is_tagged_correctly(tags: dict[str, str], key: str, mine: dict[str, str]) -> bool:
    owned = read_record(tags, Ownership()).owned  # a sealed record the system wrote, over these values
    return tags.get("kind") == KIND[key.rsplit(".", 1)[1]] and "kind" in owned


def test_soak_nothing_lost_under_faults_and_crashes(
    oss: LocalOSS, tmp_path: Path, template_bucket: oss2.Bucket
) -> None:
    fc = LocalFC(
        load_template(ROOT / "template.yml"),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint},
        dead_letters=DeadLetterStore(tmp_path / "dead-letters.jsonl"),
        concurrency=8,
        retry_base_seconds=0.02,
        crash_rate=0.1,
        seed=11,
    )
    bucket = template_bucket
    started = time.monotonic()
    with fc:
        fc.wire_oss(oss)
        oss.conditions.set_faults(
            [
                FaultRule("error", 0.08, FUNCTION_APIS),
                FaultRule("throttle", 0.08, FUNCTION_APIS),
                FaultRule("reset", 0.04, FUNCTION_APIS),
            ],
            seed=5,
        )
        with ThreadPoolExecutor(8) as pool:
            uploaded = dict(
                pool.map(lambda i: upload(bucket, i), random.Random(3).sample(range(OBJECTS), OBJECTS))
            )
        assert oss.notifier.drain(600) and fc.drain(600)
        injected = dict(oss.conditions.injected)
        oss.conditions.set_faults([])

        tags = {key: dict(bucket.get_object_tagging(key).tag_set.tagging_rule) for key in uploaded}
        wrong = {k for k in uploaded if not is_tagged_correctly(tags[k], k, uploaded[k])}
        letters = fc.dead_letters.all()
        dead_keys = {r["oss"]["object"]["key"] for d in letters for r in json.loads(d.payload)["events"]}
        assert wrong <= dead_keys, f"silently dropped: {sorted(wrong - dead_keys)[:5]}"
        for letter in letters:  # `autotag replay`, once OSS is well
            assert fc.invoke(letter.function, with_provenance(letter)).ok
        tags = {key: dict(bucket.get_object_tagging(key).tag_set.tagging_rule) for key in uploaded}

    assert all(is_tagged_correctly(tags[k], k, uploaded[k]) for k in uploaded)
    lost = [k for k, mine in uploaded.items() if any(tags[k].get(t) != v for t, v in mine.items())]
    assert lost == []
    figures = {
        "objects": len(uploaded),
        "seconds": round(time.monotonic() - started, 1),
        "invocations": fc.invocations,
        "crashes": fc.crashes,
        "faults injected": injected,
        "wrong before replay": len(wrong),
        "dead letters": len(letters),
        "silent drops": 0,
        "uploader tags lost or changed": len(lost),
    }
    print(json.dumps(figures))
    assert fc.crashes["before"] and fc.crashes["after"] and sum(injected.values())
