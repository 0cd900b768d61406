"""Bucket inventories on the local OSS: the four configuration APIs through oss2 and the V2 SDK, as OSS
checks them, and runs that write manifest.json, manifest.checksum and gzip CSV data files in OSS's layout."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path
from urllib.parse import unquote

import oss2
import pytest
import requests
from conftest import BucketFactory
from oss2.models import (
    InventoryBucketDestination,
    InventoryConfiguration,
    InventoryDestination,
    InventoryFilter,
    InventorySchedule,
    InventoryServerSideEncryptionKMS,
)
from test_ram_enforcement import allow, as_role, denied

from localcloud.oss import LocalOSS

FIELDS = ["Size", "LastModifiedDate", "ETag", "StorageClass", "TaggingCount"]


def configuration(
    inventory_id: str,
    destination: str,
    *,
    versions: str = "Current",
    prefix: str = "",
    fields: list[str] | None = None,
    frequency: str = "Daily",
) -> InventoryConfiguration:
    target = InventoryBucketDestination(
        account_id="1234567890123456",
        role_arn="acs:ram::1234567890123456:role/AliyunOSSRole",
        bucket=destination,
        inventory_format="CSV",
        prefix="inventories",
        sse_kms_encryption=InventoryServerSideEncryptionKMS("key-1"),
    )
    return InventoryConfiguration(
        inventory_id=inventory_id,
        is_enabled=True,
        inventory_schedule=InventorySchedule(frequency=frequency),
        included_object_versions=versions,
        inventory_filter=InventoryFilter(prefix=prefix),
        optional_fields=FIELDS if fields is None else fields,
        inventory_destination=InventoryDestination(bucket_destination=target),
    )


def rows_of(bucket: oss2.Bucket, key: str) -> list[list[str]]:
    data = gzip.decompress(bucket.get_object(key).read()).decode("utf-8")
    return list(csv.reader(io.StringIO(data)))


def test_configurations_round_trip_and_page(new_bucket: BucketFactory) -> None:
    source, destination = new_bucket(), new_bucket()
    source.put_bucket_inventory_configuration(configuration("daily", destination.bucket_name, prefix="img/"))
    got = source.get_bucket_inventory_configuration("daily")
    assert (got.inventory_id, got.is_enabled, got.included_object_versions) == ("daily", True, "Current")
    assert got.inventory_filter.prefix == "img/" and got.optional_fields == FIELDS
    target = got.inventory_destination.bucket_destination
    assert (target.bucket, target.prefix, target.inventory_format) == (
        destination.bucket_name,
        "inventories",
        "CSV",
    )
    assert target.sse_kms_encryption.key_id == "key-1"
    with pytest.raises(oss2.exceptions.ServerError) as again:
        source.put_bucket_inventory_configuration(configuration("daily", destination.bucket_name))
    assert (again.value.status, again.value.code) == (409, "InventoryAlreadyExist")
    for number in range(119):
        source.put_bucket_inventory_configuration(configuration(f"n-{number:03d}", destination.bucket_name))
    first = source.list_bucket_inventory_configurations()
    assert len(first.inventory_configurations) == 100 and first.is_truncated
    second = source.list_bucket_inventory_configurations(first.next_continuation_token)
    assert len(second.inventory_configurations) == 20 and not second.is_truncated
    ids = {c.inventory_id for c in first.inventory_configurations + second.inventory_configurations}
    assert len(ids) == 120
    source.delete_bucket_inventory_configuration("daily")
    with pytest.raises(oss2.exceptions.ServerError) as gone:
        source.get_bucket_inventory_configuration("daily")
    assert (gone.value.status, gone.value.code) == (404, "NoSuchInventory")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"frequency": "Hourly"}, "InvalidArgument"),
        ({"versions": "Some"}, "InvalidArgument"),
        ({"fields": ["Size", "Colour"]}, "InvalidArgument"),
    ],
)
def test_configurations_are_checked_as_oss_checks_them(
    new_bucket: BucketFactory, change: dict[str, object], code: str
) -> None:
    source = new_bucket()
    with pytest.raises(oss2.exceptions.ServerError) as refused:
        source.put_bucket_inventory_configuration(configuration("x", "dest", **change))  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.code) == (400, code)
    if "fields" in change:
        assert refused.value.ec == "0020-00000036"
    assert source.list_bucket_inventory_configurations().inventory_configurations == []


def test_a_run_writes_oss_layout_with_every_object_once(oss: LocalOSS, new_bucket: BucketFactory) -> None:
    source, destination = new_bucket(), new_bucket()
    keys = ["a b+c.txt", "img/1.jpg", 'img/2,3\n"x".jpg', "文档/报告.pdf", *(f"n/{i:03d}" for i in range(7))]
    for key in keys:
        source.put_object(key, b"data", headers={"x-oss-tagging": "t=1"} if key == "img/1.jpg" else None)
    source.put_bucket_inventory_configuration(configuration("all", destination.bucket_name))
    run = oss.run_inventory(source.bucket_name, "all", rows_per_file=4)
    assert run.rows == len(keys) and len(run.files) == 3
    manifest_key = run.manifest_key
    assert manifest_key is not None and manifest_key.startswith(f"inventories/{source.bucket_name}/all/")
    assert manifest_key.endswith("Z/manifest.json")
    manifest_bytes = destination.get_object(manifest_key).read()
    checksum = destination.get_object(manifest_key.replace("manifest.json", "manifest.checksum")).read()
    assert checksum.decode() == hashlib.md5(manifest_bytes).hexdigest()
    manifest = json.loads(manifest_bytes)
    assert (manifest["sourceBucket"], manifest["destinationBucket"], manifest["fileFormat"]) == (
        source.bucket_name,
        destination.bucket_name,
        "CSV",
    )
    assert manifest["fileSchema"] == "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass, TaggingCount"
    assert abs(int(manifest["creationTimestamp"]) - run.created) < 1
    listed = []
    for number, entry in enumerate(manifest["files"]):
        assert entry["key"].startswith(f"inventories/{source.bucket_name}/all/data/")
        assert entry["key"].endswith(".csv.gz" if number == 0 else f"-{number}.csv.gz")
        data = destination.get_object(entry["key"]).read()
        assert (len(data), hashlib.md5(data).hexdigest()) == (entry["size"], entry["MD5checksum"])
        listed += rows_of(destination, entry["key"])
    by_key = {unquote(row[1]): row for row in listed}
    assert sorted(by_key) == sorted(keys) and len(listed) == len(keys)  # every object, once
    head = source.head_object("img/1.jpg")
    row = by_key["img/1.jpg"]
    assert row[0] == source.bucket_name and row[2] == "4" and row[4] == head.etag and row[6] == "1"
    assert "%0A" in by_key['img/2,3\n"x".jpg'][1]  # keys are URL-encoded: no raw newline or comma


def test_every_version_with_its_markers(oss: LocalOSS, new_bucket: BucketFactory) -> None:
    source, destination = new_bucket(versioning="Enabled"), new_bucket()
    first = source.put_object("k", b"1").versionid
    second = source.put_object("k", b"22").versionid
    source.delete_object("k")
    source.put_object("other", b"x")
    source.put_bucket_inventory_configuration(configuration("v", destination.bucket_name, versions="All"))
    run = oss.run_inventory(source.bucket_name, "v")
    manifest = json.loads(destination.get_object(run.manifest_key).read())
    assert manifest["fileSchema"].startswith("Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size")
    rows = rows_of(destination, manifest["files"][0]["key"])
    k_rows = [r for r in rows if r[1] == "k"]
    assert [r[4] for r in k_rows] == ["true", "false", "false"]  # newest first: the delete marker
    assert [r[2] for r in k_rows[1:]] == [second, first] and k_rows[0][3] == "true"
    source.put_bucket_inventory_configuration(configuration("c", destination.bucket_name))
    current = oss.run_inventory(source.bucket_name, "c")
    current_rows = rows_of(
        destination, json.loads(destination.get_object(current.manifest_key).read())["files"][0]["key"]
    )
    assert [r[1] for r in current_rows] == ["other"]  # a deleted key is not a current object


def test_filters_and_an_empty_scan(oss: LocalOSS, new_bucket: BucketFactory) -> None:
    source, destination = new_bucket(), new_bucket()
    source.put_object("img/a.jpg", b"x")
    source.put_object("doc/b.pdf", b"x")
    source.put_bucket_inventory_configuration(configuration("img", destination.bucket_name, prefix="img/"))
    run = oss.run_inventory(source.bucket_name, "img")
    assert run.rows == 1
    source.put_bucket_inventory_configuration(configuration("none", destination.bucket_name, prefix="zzz/"))
    before = {o.key for o in oss2.ObjectIterator(destination)}
    empty = oss.run_inventory(source.bucket_name, "none")
    assert empty.manifest_key is None and empty.rows == 0  # OSS writes nothing for an empty scan
    assert {o.key for o in oss2.ObjectIterator(destination)} == before


def test_the_admin_api_runs_an_inventory_with_the_token(oss: LocalOSS, new_bucket: BucketFactory) -> None:
    source, destination = new_bucket(), new_bucket()
    source.put_object("a", b"x")
    source.put_bucket_inventory_configuration(configuration("i", destination.bucket_name))
    url = f"{oss.endpoint}/_admin/inventory"
    body = {"bucket": source.bucket_name, "id": "i", "rowsPerFile": 10}
    assert requests.post(url, json=body, timeout=10).status_code == 401
    headers = {"Authorization": f"Bearer {oss.admin_token}"}
    answer = requests.post(url, json=body, headers=headers, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["manifest"].startswith(f"oss://{destination.bucket_name}/inventories/")
    missing = requests.post(url, json={**body, "id": "nope"}, headers=headers, timeout=10)
    assert missing.status_code == 404 and "NoSuchInventory" in missing.json()["error"]


def test_configurations_survive_a_restart(tmp_path: Path) -> None:
    with LocalOSS(data_dir=tmp_path) as server:
        bucket = oss2.Bucket(oss2.Auth("local-access-key", "local-secret-key"), server.endpoint, "kept")
        bucket.create_bucket()
        bucket.put_bucket_inventory_configuration(configuration("keep", "kept"))
    with LocalOSS(data_dir=tmp_path) as server:
        bucket = oss2.Bucket(oss2.Auth("local-access-key", "local-secret-key"), server.endpoint, "kept")
        assert bucket.get_bucket_inventory_configuration("keep").inventory_id == "keep"


def test_inventory_apis_are_authorised_as_bucket_actions(oss: LocalOSS, new_bucket: BucketFactory) -> None:
    source = new_bucket()
    name = source.bucket_name
    source.put_bucket_inventory_configuration(configuration("i", name))
    reader = as_role(oss, name, allow(["oss:GetBucketInventory"], f"acs:oss:*:*:{name}"))
    assert reader.get_bucket_inventory_configuration("i").inventory_id == "i"
    assert len(reader.list_bucket_inventory_configurations().inventory_configurations) == 1
    denied(lambda: reader.put_bucket_inventory_configuration(configuration("j", name)))
    denied(lambda: reader.delete_bucket_inventory_configuration("i"))
