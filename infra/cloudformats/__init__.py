"""Alibaba Cloud's formats, byte for byte, that the local cloud and the commands working on the real cloud
both make: the event record an OSS trigger delivers (`oss_events`), OSS's ETags and CRC-64 (`checksums`),
the deterministic code zip a function is deployed as (`package`), how a distributed Map reads its items
from what OSS returned (`items`) and cuts them into batches (`batching`), which the local CloudFlow and the
laptop's `autotag backfill` both run, the CloudEvents EventBridge delivers (`eventbridge_events`), FC's
destination message a dead letter is (`dead_letters`) and the pure rules of re-driving one
(`letter_replay`). Nothing here talks to a cloud."""
