"""Alibaba Cloud's formats, byte for byte, that the local cloud and the commands working on the real cloud
both make: the event record an OSS trigger delivers (`oss_events`), OSS's ETags and CRC-64 (`checksums`)
and the deterministic code zip a function is deployed as (`package`). Nothing here talks to a cloud."""
