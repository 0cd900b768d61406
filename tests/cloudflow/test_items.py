"""Item readers and batching (pure): bounded reading, and a bad part failing alone, named by file and line."""

from __future__ import annotations

import gzip
import hashlib
import json

from cloudformats.batching import Batch, batch_input, batches
from cloudformats.items import (
    MAX_ITEM_BYTES,
    InventoryFile,
    Item,
    csv_items,
    inventory_items,
    inventory_manifest,
    json_list_items,
    lines,
)
from flowspec.definition import ItemBatcher


def test_lines_are_split_across_chunks_and_an_overlong_line_fails_alone() -> None:
    chunks = [b"a,1\nb,", b"2\r\n" + b"x" * 40, b"y" * 40 + b"\nlast"]
    assert list(lines(chunks, limit=50)) == [(1, b"a,1"), (2, b"b,2"), (3, None), (4, b"last")]


def test_csv_rows_become_objects_and_bad_rows_are_named() -> None:
    data = b"Key,Size\nk1,1\n" + b"k2," + b"9" * (MAX_ITEM_BYTES + 1) + b'\nk3,3,x\n"open,2\nk4,4\n'
    items = list(csv_items([data], "oss://b/list.csv"))
    assert [i.value for i in items if i.ok] == [{"Key": "k1", "Size": "1"}, {"Key": "k4", "Size": "4"}]
    assert [(i.where, i.error.split(" ")[0]) for i in items if not i.ok] == [
        ("oss://b/list.csv line 3", "the"),
        ("oss://b/list.csv line 4", "3"),
        ("oss://b/list.csv line 5", "not"),
    ]


def test_a_row_shorter_than_the_header_leaves_its_last_columns_out() -> None:
    """A manifest's rows are `bucket,key[,versionId]`: with or without a version, line by line."""
    data = b"b,k1\nb,k2,v2\n"
    items = list(csv_items([data], "s", ("Bucket", "Key", "VersionId")))
    assert [i.value for i in items] == [
        {"Bucket": "b", "Key": "k1"},
        {"Bucket": "b", "Key": "k2", "VersionId": "v2"},
    ]


def test_given_csv_headers_take_the_first_row_as_data() -> None:
    assert [i.value for i in csv_items([b"k1,1\n"], "s", ("Key", "Size"))] == [{"Key": "k1", "Size": "1"}]


def test_a_json_list_gives_its_elements_and_refuses_what_is_not_one() -> None:
    assert [i.value for i in json_list_items(b'[{"a": 1}, 2]', "s")] == [{"a": 1}, 2]
    (bad,) = json_list_items(b'{"a": 1}', "oss://b/l.json")
    assert (bad.ok, bad.where, bad.error) == (False, "oss://b/l.json", "not a JSON array")


def inventory(rows: list[str]) -> tuple[bytes, InventoryFile]:
    data = gzip.compress("".join(f"{row}\n" for row in rows).encode(), mtime=0)
    return data, InventoryFile("inv/data/1.csv.gz", len(data), hashlib.md5(data).hexdigest())


def test_inventory_rows_are_read_with_their_keys_decoded() -> None:
    manifest = json.dumps(
        {
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, Size",
            "files": [{"key": "k", "size": 1, "MD5checksum": "m"}],
        }
    ).encode()
    columns, files = inventory_manifest(manifest, "s")
    assert columns == ("Bucket", "Key", "Size") and files == [InventoryFile("k", 1, "m")]
    data, file = inventory(['"b","a%2Fb%20c","3"'])
    assert [i.value for i in inventory_items(data, file, columns, "f")] == [
        {"Bucket": "b", "Key": "a/b c", "Size": "3"}
    ]


def test_an_inventory_file_whose_md5_differs_from_the_manifest_fails_whole() -> None:
    data, file = inventory(['"b","k","1"'])
    (item,) = inventory_items(
        data + b"tampered", file, ("Bucket", "Key", "Size"), "oss://b/inv/data/1.csv.gz"
    )
    assert not item.ok and item.where == "oss://b/inv/data/1.csv.gz" and "MD5" in item.error


def test_an_inventory_file_that_inflates_past_its_bound_fails_and_reading_ends() -> None:
    data, file = inventory(['"b","k","1"'] * 10)
    found = list(inventory_items(data, file, ("Bucket", "Key", "Size"), "f", limit=20))
    assert not found[-1].ok and "inflates past 20 bytes" in found[-1].error


def test_a_gzip_file_that_inflates_too_far_or_ends_early_is_named_with_the_line_it_reached() -> None:
    data, file = inventory(['"b","k1","1"', '"b","k2","1"'] + [""] * 5000)
    found = list(inventory_items(data, file, ("Bucket", "Key", "Size"), "f", limit=1000))
    assert [i.value["Key"] for i in found if i.ok] == ["k1", "k2"]
    assert found[-1].where.startswith("f line ") and int(found[-1].where.split()[-1]) > 2, found[-1]
    cut, cut_file = inventory(['"b","k1","1"'] * 3)
    cut = cut[:-12]  # the gzip trailer and the last bytes lost
    cut_file = InventoryFile(cut_file.key, len(cut), hashlib.md5(cut).hexdigest())
    last = list(inventory_items(cut, cut_file, ("Bucket", "Key", "Size"), "f"))[-1]
    assert not last.ok and last.where.startswith("f line ") and "ends early" in last.error, last


def test_batches_respect_count_and_size_and_leave_unreadable_items_out() -> None:
    given = [Item({"k": n}, f"i{n}") for n in range(5)]
    given.insert(2, Item(None, "bad", "broken"))
    cut = list(batches(given, ItemBatcher(2, None, None)))
    assert [p.number if isinstance(p, Batch) else p.where for p in cut] == ["bad", 0, 1, 2]
    assert [len(p.items) for p in cut if isinstance(p, Batch)] == [2, 2, 1]
    by_size = [p for p in batches(given, ItemBatcher(None, 20, None)) if isinstance(p, Batch)]
    assert [len(p.items) for p in by_size] == [2, 2, 1]  # {"k": 0} is 8 bytes: two fit in 20
    assert batch_input(cut[1], ItemBatcher(2, None, None), {"run": "x"}) == {  # type: ignore[arg-type]
        "Items": [{"k": 0}, {"k": 1}],
        "BatchInput": {"run": "x"},
    }
    assert [batch_input(p, None, None) for p in batches(given[:2], None)] == [{"k": 0}, {"k": 1}]  # type: ignore[arg-type]
