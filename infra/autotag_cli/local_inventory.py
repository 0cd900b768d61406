"""`autotag local inventory`: a bucket inventory of the local OSS, run now — what OSS writes on its daily
or weekly schedule (manifest.json and gzip CSV data files in the destination bucket), for trying a backfill
or a sweep from an inventory on the local cloud. The local OSS runs inventories through its admin API,
whose token `autotag local up` keeps in .localcloud/ while it runs (local_cloud_file)."""

from __future__ import annotations

import json
from dataclasses import replace

import click
import oss2
import requests

from .errors import BadInput, Unreachable, doing
from .local_cloud_file import LocalCloud, LocalCloudFileError, choose, running_local_clouds
from .names import BUCKET
from .target import LOCAL_ACCOUNT_ID, Target, target_options

INVENTORY_ID = "autotag-local"


def _local_cloud(target: Target) -> tuple[Target, str]:
    """The target at the `autotag local up` of this folder serving its endpoint (without an endpoint
    given, the one running here), and that local OSS's admin token."""
    context = click.get_current_context()
    given = any(
        context.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
        for name in ("oss_endpoint", "region")
    )
    running: list[LocalCloud] = []
    try:
        running = running_local_clouds()
        cloud = choose(running, target.oss_endpoint, given)
    except LocalCloudFileError as error:  # none runs here (3), or which one is meant must be said (2)
        raise (BadInput if running else Unreachable)(str(error)) from None
    return replace(target, oss_endpoint=cloud.oss_endpoint), cloud.admin_token


@click.command("inventory")
@click.option(
    "--bucket", "bucket_name", required=True, type=BUCKET, help="The bucket to list (the inventory's source)."
)
@click.option(
    "--destination",
    type=BUCKET,
    help="The bucket the inventory is written to. Default: <bucket>-inventory (created when missing).",
)
@click.option(
    "--rows-per-file",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 10_000_000),
    help="Objects per data file (OSS splits a large inventory into several files).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@target_options(oss=True)
def local_inventory(
    bucket_name: str, destination: str | None, rows_per_file: int, as_json: bool, target: Target
) -> None:
    """Run a bucket inventory of the local OSS now and print its manifest.json's oss:// location.

    The first time, the destination bucket is created and the inventory configured (id autotag-local:
    CSV, current versions, with Size, LastModifiedDate, ETag and TaggingCount), as PutBucketInventory would.

    \b
    Example:
      autotag local inventory --bucket autotag-demo
    """
    target, token = _local_cloud(target)
    destination = destination or f"{bucket_name}-inventory"
    target_bucket = target.bucket(destination)
    doing(f"creating oss://{destination} at {target.oss_endpoint}")
    try:
        target_bucket.get_bucket_info()
    except oss2.exceptions.NoSuchBucket:
        target_bucket.create_bucket()
    source = target.bucket(bucket_name)
    doing(f"configuring inventory {INVENTORY_ID} of oss://{bucket_name} at {target.oss_endpoint}")
    try:
        configured = source.get_bucket_inventory_configuration(INVENTORY_ID)
    except oss2.exceptions.NoSuchInventory:
        configured = inventory_configuration(destination)
        source.put_bucket_inventory_configuration(configured)
    else:
        writes_to = configured.inventory_destination.bucket_destination.bucket.removeprefix("acs:oss:::")
        if writes_to != destination:
            raise BadInput(
                f"inventory {INVENTORY_ID} of oss://{bucket_name} writes to {writes_to}, not {destination}: "
                f"pass --destination {writes_to}, or delete the inventory configuration first"
            )
    # OSS names a run's folder by the minute it began (YYYY-MM-DDTHH-MMZ, which the product reads): a
    # second run in the same minute would write over the first's manifest.json
    prefix = configured.inventory_destination.bucket_destination.prefix
    minute = target.oss_time().strftime("%Y-%m-%dT%H-%MZ")
    earlier = f"{prefix}/{bucket_name}/{INVENTORY_ID}/{minute}/manifest.json"
    doing(f"checking oss://{destination}/{earlier} at {target.oss_endpoint}")
    if target_bucket.object_exists(earlier):
        raise click.ClickException(
            f"inventory {INVENTORY_ID} of oss://{bucket_name} already ran in this minute "
            f"({minute}; OSS names a "
            "run's folder by its minute): run it again in the next minute, or use the one written"
        )
    doing(f"running inventory {INVENTORY_ID} of oss://{bucket_name} at {target.oss_endpoint}")
    answer = requests.post(
        f"{target.oss_endpoint}/_admin/inventory",
        json={"bucket": bucket_name, "id": INVENTORY_ID, "rowsPerFile": rows_per_file},
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=120,
    )
    run = answer.json()
    if answer.status_code != 200:
        raise click.ClickException(f"the local OSS refused: {run.get('error')}")
    if as_json:
        click.echo(json.dumps(run))
    elif run.get("manifest") is None:
        raise click.ClickException(f"oss://{bucket_name} has no object: OSS writes no inventory then")
    else:
        click.echo(run["manifest"])


def inventory_configuration(
    destination: str,
    inventory_id: str = INVENTORY_ID,
    versions: str = "Current",
    fields: tuple[str, ...] = ("Size", "LastModifiedDate", "ETag", "TaggingCount"),
) -> oss2.models.InventoryConfiguration:
    """A daily CSV inventory written into `destination` under inventory/ (PutBucketInventory's body)."""
    return oss2.models.InventoryConfiguration(
        inventory_id=inventory_id,
        is_enabled=True,
        inventory_schedule=oss2.models.InventorySchedule(frequency="Daily"),
        included_object_versions=versions,
        optional_fields=list(fields),
        inventory_destination=oss2.models.InventoryDestination(
            bucket_destination=oss2.models.InventoryBucketDestination(
                account_id=LOCAL_ACCOUNT_ID,
                role_arn=f"acs:ram::{LOCAL_ACCOUNT_ID}:role/AliyunOSSRole",
                bucket=destination,
                inventory_format="CSV",
                prefix="inventory",
            )
        ),
    )
