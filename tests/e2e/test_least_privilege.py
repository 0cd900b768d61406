"""Least privilege, proven both ways against the enforcing local cloud.

`exercise` drives every OSS and FC call the three functions can make — rules kept in OSS where docs/rules.md
keeps them, unversioned and versioned buckets, uploader tags, symlinks and dangling symlinks, events with
and without object metadata, the sweep's state
(checkpoints, leases and their clean-up, shard plans from a listing and from an inventory's newest run), the
sweep's fan-out through the FC API, the backfill function's batches (a flow's Map items, of an unversioned
and of a versioned bucket, uploader tags kept), and the on-failure destination — with the
functions running under their services' roles as template.yml declares them. (a) With the shipped template
every call is allowed and does its job. (b) With any single action or statement removed from any policy, at
least one of them fails: nothing granted is unused."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import oss2
import pytest
from conftest import LONG_TERM, sealed

from autotag.ownership import Ownership, read_record
from autotag_cli.events import oss_event_document
from autotag_cli.local_inventory import inventory_configuration
from localcloud.fc import DeadLetterStore, LocalFC, Template, load_template
from localcloud.fc.api import LocalFcApi
from localcloud.fc.eventbridge import cloud_event
from localcloud.oss import Credential, LocalOSS
from localcloud.oss.errors import OssError
from localcloud.ram import CATALOG, Policy, Role, parse_policy, role_arn, session_for

ROOT = Path(__file__).parents[2]
BUCKET = "autotag-demo"  # the bucket template.yml's policies name
TEMPLATE = load_template(ROOT / "template.yml")
STATE_BUCKET = TEMPLATE.function("tag-expiry").environment["AUTOTAG_SWEEP_STATE_BUCKET"]
# Rules kept in OSS where docs/rules.md keeps them (each role may read that one object): the shipped rules.
RULES = f"oss://{STATE_BUCKET}/rules.json"


def tags(bucket: oss2.Bucket, key: str, version_id: str | None = None) -> dict[str, str]:
    params = {"versionId": version_id} if version_id else None
    return dict(bucket.get_object_tagging(key, params=params).tag_set.tagging_rule)


def add_stale_tag(bucket: oss2.Bucket, key: str, version_id: str | None = None, alone: bool = False) -> None:
    """Give an object a tag the system owns (a sealed record lists it) that no rule derives: the sweep's
    to remove."""
    current = {} if alone else tags(bucket, key, version_id)
    owned = set(read_record(current, Ownership()).owned)
    kept = {k: v for k, v in current.items() if k != "autotag"}
    rule = oss2.models.TaggingRule()
    rule.tagging_rule.update(sealed({**kept, "stage": "1"}, *owned, "stage"))
    params = {"versionId": version_id} if version_id else None
    bucket.put_object_tagging(key, oss2.models.Tagging(rule), params=params)


def set_tags(bucket: oss2.Bucket, key: str, tags_set: dict[str, str], version_id: str | None = None) -> None:
    rule = oss2.models.TaggingRule()
    rule.tagging_rule.update(tags_set)
    params = {"versionId": version_id} if version_id else None
    bucket.put_object_tagging(key, oss2.models.Tagging(rule), params=params)


def backfill(fc: LocalFC, items: list[dict[str, str]]) -> dict[str, int]:
    """A synchronous invocation of the backfill function with one batch of a flow's Map, as the flow's
    processor Task sends it: the outcomes' counts."""
    document = {"Items": items, "BatchInput": {"Bucket": BUCKET}}
    result = fc.invoke("tag-backfill", json.dumps(document).encode())
    return json.loads(result.payload or "{}").get("Counts", {}) if result.ok else {"error": 1}


def every_version_inventory(bucket: oss2.Bucket, destination: str) -> oss2.models.InventoryConfiguration:
    return inventory_configuration(destination, "every-version", "All")


def timer(payload: dict[str, object]) -> bytes:
    moment = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(
        {"triggerTime": moment, "triggerName": "check", "payload": json.dumps(payload)}
    ).encode()


def exercise(template: Template) -> list[str]:
    """Every call the functions can make, under `template`'s policies; what went wrong (empty: nothing)."""
    problems: list[str] = []

    def expect(condition: bool, what: str) -> None:
        if not condition:
            problems.append(what)

    with LocalOSS() as oss:
        admin = oss2.Bucket(
            oss2.Auth(LONG_TERM.access_key_id, LONG_TERM.access_key_secret), oss.endpoint, BUCKET
        )
        admin.create_bucket()
        fc = LocalFC(
            template,
            environment={
                "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
                "AUTOTAG_FANOUT": "fc",
                "AUTOTAG_RULES": RULES,
            },
            dead_letters=DeadLetterStore(),
            retry_base_seconds=0.01,
        )
        api = LocalFcApi(fc)
        fc.environment["AUTOTAG_FC_ENDPOINT"] = api.endpoint  # the sweep's shards go through the FC API
        with fc, api:
            fc.wire_oss(oss)
            shipped = ROOT / "functions/autotag/rules/default.json"
            oss2.Bucket(admin.auth, oss.endpoint, STATE_BUCKET).put_object("rules.json", shipped.read_bytes())

            def settle(what: str) -> None:
                expect(oss.notifier.drain(600) and fc.drain(600), f"{what}: still running")
                failed = [f"{r.function}: {r.error_message[:300]}" for r in fc.results if not r.ok]
                expect(not failed, f"{what}: invocations failed: {failed}")
                fc.results.clear()

            # -- the upload function on an unversioned bucket ------------------------------------------
            admin.put_object("a/photo.jpg", b"x")  # HEAD, PutObjectTagging
            admin.put_object("b/report.pdf", b"x", headers={"x-oss-tagging": "team=t"})  # + GetObjectTagging
            admin.put_symlink("a/photo.jpg", "c/link")  # HEAD follows the link to its target
            admin.put_symlink("nowhere.jpg", "d/dangling")  # HEAD fails; the link's tags are read
            admin.put_object("e/stale.txt", b"x")
            settle("uploads")
            expect(tags(admin, "a/photo.jpg").get("kind") == "image", "a/photo.jpg was not tagged")
            expect(
                tags(admin, "b/report.pdf").get("team") == "t", "the uploader's tag of b/report.pdf was lost"
            )
            expect(tags(admin, "b/report.pdf").get("kind") == "document", "b/report.pdf was not tagged")
            expect("kind" in tags(admin, "c/link"), "the symlink c/link was not tagged")
            expect("kind" in tags(admin, "d/dangling"), "the dangling symlink d/dangling was not tagged")

            # -- a batch whose element OSS fails for a while: that element re-driven alone (FC API) ------
            failing = {"left": 4}  # the gateway's attempts at the one write

            def fail_for_a_while(request: object) -> None:
                late = getattr(request, "key", "") == "f/late.jpg"
                if late and getattr(request, "api", "") == "PutObjectTagging" and failing["left"] > 0:
                    failing["left"] -= 1
                    raise OssError(503, "ServiceUnavailable", "Please reduce your request rate.")

            admin.put_object("f/late.jpg", b"x")
            admin.put_object("f/early.jpg", b"x")
            settle("the batch's objects uploaded")
            admin.delete_object_tagging("f/late.jpg")  # untagged again: the batch has a write to do
            oss.conditions.hooks.append(fail_for_a_while)
            batch = [
                cloud_event(oss_event_document(BUCKET, key)["events"][0], "1234567890123456")  # type: ignore[index]
                for key in ("f/early.jpg", "f/late.jpg")
            ]
            pushed = fc.invoke("tag-on-upload", json.dumps(batch).encode())
            expect(pushed.ok, f"the batch failed: {pushed.error_message[:300]}")
            settle("the re-driven element")
            oss.conditions.hooks.remove(fail_for_a_while)
            expect("kind" in tags(admin, "f/late.jpg"), "the re-driven f/late.jpg was not tagged")

            # -- the sweep, fanned out over two shards through the FC API ------------------------------
            add_stale_tag(admin, "a/photo.jpg")  # pruned with PutObjectTagging
            add_stale_tag(admin, "e/stale.txt", alone=True)  # nothing left: DeleteObjectTagging
            fc.invoke_async("tag-expiry", timer({"buckets": [BUCKET], "shards": 2, "full": True}))
            settle("sharded sweep")
            expect(
                "stage" not in tags(admin, "a/photo.jpg"), "the sharded sweep left a/photo.jpg's stale tag"
            )
            expect(tags(admin, "e/stale.txt") == {}, "the sharded sweep left e/stale.txt's stale tag")

            # -- the whole bucket as one scope, twice: the second run clears the first run's lease ----
            for run in (1, 2):
                add_stale_tag(admin, "a/photo.jpg")
                fc.invoke_async("tag-expiry", timer({"buckets": [BUCKET], "full": True}))
                settle(f"sweep {run}")
                expect("stage" not in tags(admin, "a/photo.jpg"), f"sweep {run} left a/photo.jpg's stale tag")
            state = oss2.Bucket(admin.auth, oss.endpoint, STATE_BUCKET)  # the sweep's, not the tagged bucket
            leases = [o.key for o in oss2.ObjectIterator(state, prefix=".autotag/") if "/lease-" in o.key]
            expect(bool(leases), f"the sweep kept no lease in {STATE_BUCKET}")
            scopes = {key.rsplit("/", 1)[0] for key in leases}
            expect(len(leases) == len(scopes), f"old leases were not deleted: {sorted(leases)}")

            # -- a batch of the backfill flow's Map: an untagged object, and one with an uploader's tag ----
            admin.put_object("bf/new.jpg", b"x")
            admin.put_object("bf/mine.txt", b"x", headers={"x-oss-tagging": "team=t"})
            settle("uploads before the backfill")
            admin.delete_object_tagging("bf/new.jpg")  # as if it had been there before the trigger
            set_tags(admin, "bf/mine.txt", {"team": "t"})
            counts = backfill(fc, [{"Key": "bf/new.jpg"}, {"Key": "bf/mine.txt"}])
            expect(counts == {"tagged": 2}, f"the backfill batch: {counts}")
            expect(tags(admin, "bf/new.jpg").get("kind") == "image", "the backfill left bf/new.jpg untagged")
            mine = tags(admin, "bf/mine.txt")
            expect(
                mine.get("team") == "t" and mine.get("kind") == "text", f"the backfill: bf/mine.txt {mine}"
            )

            # -- a batch with an execution's own rules (backfill --cloud --rules), then the Report step ----
            state = oss2.Bucket(admin.auth, oss.endpoint, STATE_BUCKET)
            pinned = state.put_object("backfill/rules/lp.json", shipped.read_bytes()).etag
            admin.put_object("bf/pinned.jpg", b"x")
            settle("an upload before the pinned backfill")
            admin.delete_object_tagging("bf/pinned.jpg")
            batch = {
                "Items": [{"Key": "bf/pinned.jpg"}],
                "BatchInput": {
                    "Bucket": BUCKET,
                    "Rules": f"oss://{STATE_BUCKET}/backfill/rules/lp.json",
                    "RulesETag": pinned,
                },
            }
            ran = fc.invoke("tag-backfill", json.dumps(batch).encode())
            counts = json.loads(ran.payload or "{}").get("Counts", {}) if ran.ok else {"error": 1}
            expect(counts == {"tagged": 1}, f"the backfill batch with the execution's rules: {counts}")
            # the Map's ResultWriter's files, as the engine writes them, then the flow's Report step
            results = "backfill/reports/lp/Backfill/"
            entry = {"Status": "SUCCEEDED", "Input": batch, "Output": json.loads(ran.payload or "{}")}
            state.put_object(f"{results}succeeded_0.json", json.dumps([entry]).encode())
            listed = {"ResultFiles": {"SUCCEEDED": [f"{results}succeeded_0.json"], "FAILED": []}}
            state.put_object(f"{results}manifest.json", json.dumps(listed).encode())
            request = {
                "CompletionReport": {
                    "ResultWriterDetails": {"Bucket": STATE_BUCKET, "ManifestKey": f"{results}manifest.json"},
                    "Report": {"bucket": STATE_BUCKET, "prefix": "backfill/reports/"},
                    "Execution": "lp",
                    "PartRows": None,
                }
            }
            reported = fc.invoke("tag-backfill", json.dumps(request).encode())
            expect(reported.ok, f"the completion report: {reported.payload!r}")
            expect(
                state.object_exists("backfill/reports/lp/report/report.json"),
                "the report.json was not written",
            )

            # -- a versioned bucket: every call names a version -----------------------------------------
            admin.put_bucket_versioning(oss2.models.BucketVersioningConfig("Enabled"))
            version = admin.put_object("v/new.jpg", b"x", headers={"x-oss-meta-owner": "ann"}).versionid
            stale_version = admin.put_object("v/old.txt", b"x").versionid
            settle("versioned uploads")
            expect(
                tags(admin, "v/new.jpg", version).get("owner") == "ann", "v/new.jpg's version was not tagged"
            )
            # An event without object metadata (older deliveries, replays): the function HEADs the version.
            event = oss_event_document(BUCKET, "v/new.jpg", size=1, version_id=version)
            for record in event["events"]:  # type: ignore[attr-defined]
                record["oss"]["object"].pop("objectMeta", None)
            replayed = fc.invoke("tag-on-upload", json.dumps(event).encode())
            expect(
                replayed.ok, f"a versioned event without objectMeta failed: {replayed.error_message[:300]}"
            )
            add_stale_tag(admin, "v/new.jpg", version)
            add_stale_tag(admin, "v/old.txt", stale_version, alone=True)
            fc.invoke_async("tag-expiry", timer({"buckets": [BUCKET], "full": True}))
            settle("versioned sweep")
            expect("stage" not in tags(admin, "v/new.jpg", version), "the versioned sweep left a stale tag")
            expect(tags(admin, "v/old.txt", stale_version) == {}, "the versioned sweep left v/old.txt's tag")

            # -- a batch of the inventory flow's Map over every version: each item names its version ------
            inventory = oss2.Bucket(admin.auth, oss.endpoint, "autotag-demo-inventory")
            inventory.create_bucket()
            bare = admin.put_object("v/bare.jpg", b"x").versionid
            owned = admin.put_object("v/owned.txt", b"x", headers={"x-oss-tagging": "team=t"}).versionid
            settle("versioned uploads before the backfill")
            admin.delete_object_tagging("v/bare.jpg", params={"versionId": bare})
            set_tags(admin, "v/owned.txt", {"team": "t"}, owned)
            admin.put_bucket_inventory_configuration(every_version_inventory(admin, inventory.bucket_name))
            oss.run_inventory(BUCKET, "every-version")
            counts = backfill(
                fc,
                [
                    {"Bucket": BUCKET, "Key": "v/bare.jpg", "VersionId": bare},
                    {"Bucket": BUCKET, "Key": "v/owned.txt", "VersionId": owned},
                ],
            )
            expect(counts == {"tagged": 2}, f"the versioned backfill batch: {counts}")
            expect(
                tags(admin, "v/bare.jpg", bare).get("kind") == "image",
                "the backfill left v/bare.jpg's version",
            )
            kept = tags(admin, "v/owned.txt", owned)
            expect(
                kept.get("team") == "t" and kept.get("kind") == "text", f"the backfill: v/owned.txt {kept}"
            )

            # -- a sweep of v/ in two shards planned from the inventory's newest run: its folder listed, its
            #    manifest and the start of its data file read ---------------------------------------------
            add_stale_tag(admin, "v/bare.jpg", bare)
            folder = f"oss://{inventory.bucket_name}/inventory/{BUCKET}/every-version/"
            payload = {"buckets": [BUCKET], "prefix": "v/", "shards": 2, "full": True, "inventory": folder}
            planned = fc.invoke("tag-expiry", timer(payload))
            fanned = json.loads(planned.payload or "{}") if planned.ok else {"error": planned.error_message}
            dispatched = fanned.get("dispatched") or [fanned]
            expect(
                len(dispatched[0].get("shards", [])) == 2,
                f"the sweep planned from the inventory: {dispatched}",
            )
            settle("sweep planned from the inventory")
            expect(
                "stage" not in tags(admin, "v/bare.jpg", bare), "the inventory-planned sweep left a stale tag"
            )

            # -- failed invocations reach the on-failure destination ------------------------------------
            fc.crash_rate = 1.0
            fc.invoke_async("tag-on-upload", json.dumps(oss_event_document(BUCKET, "a/photo.jpg")).encode())
            fc.invoke_async("tag-expiry", timer({"buckets": [BUCKET]}))
            expect(fc.drain(600), "crashed invocations: still retrying")
            fc.crash_rate = 0.0
            fc.results.clear()
            # (a crash after a sweep ran leaves its state writes' events crashing too: at least one each)
            letters = {letter.function for letter in fc.dead_letters.all()}
            expected = {"tag-expiry", "tag-on-upload"}
            expect(letters == expected, f"dead letters of {letters}; {fc.undelivered}")
    return problems


def without(template: Template, arn: str, policy: int, statement: int, action: str | None) -> Template:
    """`template` with one statement (or one action of it) removed from one role's policy."""
    role = template.roles[arn]
    statements = list(role.policies[policy].statements)
    if action is None:
        del statements[statement]
    else:
        kept = tuple(a for a in statements[statement].actions if a != action)
        statements[statement] = replace(statements[statement], actions=kept)
    policies = list(role.policies)
    policies[policy] = Policy(tuple(statements))
    return replace(template, roles={**template.roles, arn: Role(arn, tuple(policies))})


def mutations(template: Template) -> dict[str, Template]:
    """Every removal of a single statement or a single action (of a statement with several)."""
    found: dict[str, Template] = {}
    for arn, role in template.roles.items():
        for p, policy in enumerate(role.policies):
            for s, statement in enumerate(policy.statements):
                label = f"{role.name}: {statement.where.split(', ', 1)[1]}"
                found[f"{label} removed"] = without(template, arn, p, s, None)
                if len(statement.actions) > 1:
                    for action in statement.actions:
                        found[f"{label} without {action}"] = without(template, arn, p, s, action)
    return found


MUTATIONS = mutations(TEMPLATE)


def test_every_call_the_functions_make_is_allowed_by_the_template() -> None:
    assert exercise(TEMPLATE) == []


@pytest.mark.parametrize("label", sorted(MUTATIONS))
def test_removing_any_grant_breaks_something(label: str) -> None:
    started = time.monotonic()
    problems = exercise(MUTATIONS[label])
    assert problems, f"{label}: nothing failed, so the grant is unused ({time.monotonic() - started:.1f} s)"


def uploader(oss: LocalOSS) -> oss2.Bucket:
    """A client of the tagged bucket signed as an uploader: a RAM role that may PutObject (with tags) on
    the tagged bucket's objects and nothing else."""
    document = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:PutObject", "oss:PutObjectTagging"],
                "Resource": [f"acs:oss:*:*:{BUCKET}/*"],
            }
        ],
    }
    role = Role(role_arn("uploader"), (parse_policy(document, CATALOG),))
    session = session_for(role)
    oss.add_credentials(
        [Credential(session.access_key_id, session.access_key_secret, session.security_token, role)]
    )
    auth = oss2.StsAuth(session.access_key_id, session.access_key_secret, session.security_token)
    return oss2.Bucket(auth, oss.endpoint, BUCKET)


def test_an_uploader_cannot_write_the_sweeps_state_and_its_forgeries_change_nothing() -> None:
    """template.yml keeps the sweep's state where the functions may write and uploaders may not. An
    uploader's credentials (PutObject on the tagged bucket only) cannot write it, and what the uploader
    writes in the tagged bucket's .autotag/ — a checkpoint claiming a pass completed now, a live lease, a
    shard plan with a gap — changes nothing: the sweep, under its template role, still removes a tag whose
    TTL has passed and sweeps every key."""
    with LocalOSS() as oss:
        admin = oss2.Bucket(
            oss2.Auth(LONG_TERM.access_key_id, LONG_TERM.access_key_secret), oss.endpoint, BUCKET
        )
        admin.create_bucket()
        fc = LocalFC(
            TEMPLATE,
            environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "AUTOTAG_FANOUT": "in-process"},
            dead_letters=DeadLetterStore(),
        )
        with fc:
            fc.wire_oss(oss)
            admin.put_object("tmp/scratch.csv", b"x")
            assert oss.notifier.drain(600) and fc.drain(600)
            assert tags(admin, "tmp/scratch.csv")["lifecycle"] == "temporary"
            first = json.loads(fc.invoke("tag-expiry", timer_at(oss, {"buckets": [BUCKET]})).payload or "{}")
            assert first["sweeps"][0]["complete"], first

            state = oss2.Bucket(admin.auth, oss.endpoint, STATE_BUCKET)
            (checkpoint,) = [
                o.key
                for o in oss2.ObjectIterator(state, prefix=".autotag/sweep/")
                if o.key.endswith("/checkpoint.json")
            ]
            forger = uploader(oss)
            refused = oss2.Bucket(forger.auth, oss.endpoint, STATE_BUCKET)
            with pytest.raises(oss2.exceptions.ServerError) as denied:
                refused.put_object(checkpoint, b"{}")
            assert (denied.value.status, denied.value.code) == (403, "AccessDenied")

            oss.clock.advance(timedelta(days=8))
            now = oss.clock.now()
            folder = checkpoint.rsplit("/", 1)[0]
            fingerprint = first["rulesFingerprint"]
            forged = {
                "format": 1,
                "scope": {"bucket": BUCKET, "prefix": "", "startAt": "", "endBefore": None},
                "completed": {"clock": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "fingerprint": fingerprint},
                "current": None,
            }
            forger.put_object(checkpoint, json.dumps(forged).encode())
            forger.put_object(f"{folder}/lease-000000000999", b'{"owner": "forger", "released": false}')
            forger.put_object(f"{folder}/shards.json", b'{"count": 2, "ranges": [["", "a"], ["z", null]]}')
            second = json.loads(fc.invoke("tag-expiry", timer_at(oss, {"buckets": [BUCKET]})).payload or "{}")
            (report,) = second["sweeps"]
            assert report["complete"] and report["tagsRemoved"] == 1 and report["warnings"] == [], report
            assert "lifecycle" not in tags(admin, "tmp/scratch.csv")

            sharded = fc.invoke("tag-expiry", timer_at(oss, {"buckets": [BUCKET], "shards": 2, "full": True}))
            (dispatched,) = json.loads(sharded.payload or "{}")["dispatched"]
            assert dispatched["warnings"] == [] and [s["startAt"] for s in dispatched["shards"]] == [""]
            assert sum(i["sweeps"][0]["listed"] for i in dispatched["invocations"]) == 1


def timer_at(oss: LocalOSS, payload: dict[str, object]) -> bytes:
    """A timer event at the local OSS's own time (its clock may have been moved)."""
    moment = oss.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(
        {"triggerTime": moment, "triggerName": "check", "payload": json.dumps(payload)}
    ).encode()
