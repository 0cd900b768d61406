"""Running an inventory against the store: scan the source bucket under the store's lock, then write the
data files, manifest.json and manifest.checksum into the destination bucket as OSS does."""

from __future__ import annotations

import hashlib

from cloudformats.checksums import crc64, md5_etag

from .api.inventory import no_such_inventory
from .errors import invalid_argument
from .events import Notifier
from .inventory import InventoryRun, data_files, folder, manifest_document, scan, written_event
from .model import ObjectVersion
from .store import Store


def run(
    store: Store, notifier: Notifier, bucket_name: str, inventory_id: str, rows_per_file: int
) -> InventoryRun:
    if rows_per_file < 1:
        raise invalid_argument(
            f"rowsPerFile {rows_per_file} is not at least 1.", "rowsPerFile", str(rows_per_file)
        )
    source = store.bucket(bucket_name)
    config = source.inventories.get(inventory_id)
    if config is None:
        raise no_such_inventory(inventory_id)
    destination = store.bucket(config.destination_bucket)
    with store.lock:
        created = store.clock.time()  # the scan's moment: manifest.json's creationTimestamp
        columns, scanned = scan(source, config, rows_per_file)
    root = config.root(bucket_name)
    if not scanned:  # OSS writes no inventory for a scan that finds no object
        return InventoryRun(config.destination_bucket, None, (), 0, created)
    files = data_files(root, scanned)
    manifest_key = f"{root}{folder(created)}/manifest.json"
    manifest = manifest_document(bucket_name, config, columns, files, created)
    checksum = hashlib.md5(manifest).hexdigest().encode()
    for key, data, content_type in (
        *((k, d, "application/x-gzip") for k, d in files),
        (manifest_key, manifest, "application/json"),
        (manifest_key.removesuffix(".json") + ".checksum", checksum, "text/plain"),
    ):
        version = ObjectVersion(
            key=key, data=data, content_type=content_type, etag=md5_etag(data), crc64=crc64(data)
        )
        store.put(destination, version)
        notifier.publish(written_event(destination.name, version))
    return InventoryRun(
        config.destination_bucket, manifest_key, tuple(k for k, _ in files), sum(map(len, scanned)), created
    )
