"""Bucket inventory configurations: PutBucketInventory, GetBucketInventory, ListBucketInventory and
DeleteBucketInventory (`?inventory[&inventoryId=...]`). Running an inventory is `LocalOSS.run_inventory`."""

from __future__ import annotations

from ..errors import OssError, invalid_argument
from ..inventory import LIST_PAGE, MAX_INVENTORIES_PER_BUCKET, parse_config, render_config
from ..request import OssRequest
from ..xmlout import Doc
from .common import OssResponse, ServerContext


def _inventory_id(req: OssRequest) -> str:
    inventory_id = req.query.get("inventoryId", "")
    if not inventory_id:
        raise invalid_argument("The request needs an inventoryId.", "inventoryId", "")
    return inventory_id


def no_such_inventory(inventory_id: str) -> OssError:
    return OssError(
        404,
        "NoSuchInventory",
        "The specified inventory configuration does not exist.",
        InventoryId=inventory_id,
    )


def put_bucket_inventory(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    config = parse_config(req.body, _inventory_id(req))
    with ctx.store.lock:
        if config.id in bucket.inventories:
            raise OssError(
                409,
                "InventoryAlreadyExist",
                "An inventory configuration with this Id already exists.",
                InventoryId=config.id,
            )
        if len(bucket.inventories) >= MAX_INVENTORIES_PER_BUCKET:
            raise OssError(
                400,
                "InventoryExceedLimit",
                f"A bucket has at most {MAX_INVENTORIES_PER_BUCKET} inventory configurations.",
            )
        bucket.inventories[config.id] = config
        ctx.store.save_bucket(bucket)
    return OssResponse()


def get_bucket_inventory(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    inventory_id = _inventory_id(req)
    config = bucket.inventories.get(inventory_id)
    if config is None:
        raise no_such_inventory(inventory_id)
    doc = Doc("InventoryConfiguration")
    render_config(doc, None, config)
    return OssResponse.xml(doc)


def list_bucket_inventory(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    after = req.query.get("continuation-token", "")
    with ctx.store.lock:
        ids = sorted(i for i in bucket.inventories if i > after)
        page = [bucket.inventories[i] for i in ids[:LIST_PAGE]]
    doc = Doc("ListInventoryConfigurationsResult")
    for config in page:
        render_config(doc, doc.add(None, "InventoryConfiguration"), config)
    truncated = len(ids) > LIST_PAGE
    doc.add(None, "IsTruncated", truncated)
    if truncated:
        doc.add(None, "NextContinuationToken", page[-1].id)
    return OssResponse.xml(doc)


def delete_bucket_inventory(ctx: ServerContext, req: OssRequest) -> OssResponse:
    bucket = ctx.store.bucket(req.bucket)
    inventory_id = _inventory_id(req)
    with ctx.store.lock:
        if bucket.inventories.pop(inventory_id, None) is not None:
            ctx.store.save_bucket(bucket)
    return OssResponse(204)
