"""Alibaba Cloud's formats, byte for byte, that the local cloud and the commands working on the real cloud
both make: the event record an OSS trigger delivers (`oss_events`), OSS's ETags and CRC-64 (`checksums`)
the deterministic code zip a function is deployed as (`package`), and how a distributed Map reads its
items from what OSS returned (`items`) and cuts them into batches (`batching`), which the local CloudFlow
and the laptop's `autotag backfill` both run. Nothing here talks to a cloud."""
