"""Shard boundaries from a bucket inventory: the keys at the start of each of its data files.

A listing's top-level entries say nothing about how many keys sit under each, so a bucket whose keys share
one folder gets one shard holding everything. An inventory's data files each hold a like share of the
objects: the first records of each (one ranged GetObject per file, the first MAX_HEAD_BYTES gunzipped as
far as they go) are exact quantiles of the key space when the files are in key order, and a sample of it
otherwise. Either way the cuts balance the shards. The inventory only decides where the shards split: each
shard still lists its range, so what came after the inventory's scan is swept too, and an inventory
forged to leave a gap leaves none.

Whoever may invoke the sweep names the inventory, so where it is read from is checked: never from a bucket
the function sweeps (uploaders write there: a manifest of theirs could name someone else's file as a data
file, whose first column would come back as shard boundaries), and a manifest's data files only from the
bucket that holds it (OSS writes both to the inventory's destination bucket)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor

from ..bucket_gateway import BucketGateway
from ..gateway import ObjectGone, OssFailure
from ..inventory import InventoryError, Location, Manifest, leading_rows, newest_run, parse_location
from ..inventory_reader import read_manifest
from .shards import sampled_boundaries

MAX_HEAD_BYTES = 64 * 1024  # of each data file: a few thousand records
MAX_BOUNDARIES = 100_000  # keys kept in all, whatever the number of data files
MAX_RUN_PAGES = 20  # runs looked at in an inventory's folder: up to 20,000 (55 years of daily runs)
READ_WORKERS = 16


def inventory_boundaries(
    inventory: str,
    bucket: str,
    prefix: str,
    state_prefix: str,
    open_bucket: Callable[[str], BucketGateway],
    swept: Collection[str] = (),
) -> list[str]:
    """Boundaries for the shards of `bucket` under `prefix`, from the inventory at `inventory`: a
    manifest.json, or a folder whose newest run's manifest.json is read, in a bucket not among `swept`
    (the function's AUTOTAG_BUCKETS). InventoryError names the oss:// location that is missing, refused or
    unusable."""
    location = parse_location(inventory, "inventory")
    if location.bucket in swept:
        raise InventoryError(
            f"{location} is in {location.bucket!r}, a bucket this function sweeps, where uploaders write: "
            "an inventory is read only from its destination bucket, which they may not write"
        )
    manifest_key = _manifest_key(open_bucket(location.bucket), location)
    where = f"oss://{location.bucket}/{manifest_key}"
    try:
        manifest = read_manifest(open_bucket(location.bucket), manifest_key)
    except OssFailure as error:
        raise InventoryError(f"cannot read {where}: {error}") from None
    if manifest.source_bucket != bucket:
        raise InventoryError(f"{where} is an inventory of bucket {manifest.source_bucket!r}, not {bucket!r}")
    if manifest.destination_bucket != location.bucket:
        raise InventoryError(
            f"{where} says its data files are in {manifest.destination_bucket!r}; OSS writes them beside "
            f"the manifest, in {location.bucket!r}: not read"
        )
    keys = _leading_keys(open_bucket(location.bucket), manifest, where)
    return sampled_boundaries(keys, prefix, state_prefix, MAX_BOUNDARIES)


def _manifest_key(gateway: BucketGateway, location: Location) -> str:
    if not location.key.endswith("/"):
        return location.key
    try:
        folders = gateway.list_children(location.key, max_pages=MAX_RUN_PAGES)
    except OssFailure as error:
        raise InventoryError(f"cannot list {location}: {error}") from None
    run = newest_run(folders, location.key)
    if run is None:
        raise InventoryError(f"{location} holds no inventory run (no YYYY-MM-DDTHH-MMZ/ folder)")
    return run + "manifest.json"


def _leading_keys(gateway: BucketGateway, manifest: Manifest, where: str) -> list[list[str]]:
    """The keys of the first records of each data file, file by file (one ranged GetObject each)."""

    def first_keys(key: str) -> list[str]:
        data_file = f"oss://{gateway.bucket.bucket_name}/{key}"
        try:
            head = gateway.read_start(key, MAX_HEAD_BYTES)
        except ObjectGone:
            raise InventoryError(f"{data_file}, listed in {where}, does not exist") from None
        except OssFailure as error:
            raise InventoryError(f"cannot read {data_file}, listed in {where}: {error}") from None
        return [row.key for row in leading_rows(head, manifest.columns, data_file)]

    with ThreadPoolExecutor(max_workers=READ_WORKERS, thread_name_prefix="inventory") as pool:
        return list(pool.map(first_keys, [f.key for f in manifest.files]))
