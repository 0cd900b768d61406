"""The local OSS through the official Node.js OSS SDK, `ali-oss`, used as its users use it: one node script
runs what an application does (put with tags and metadata, head, get, object tagging, copy, append,
multipart upload, symlinks, batch delete of odd keys, listing, presigned URLs, versioning, error paths) and
prints what it saw as JSON, which the tests assert.

ali-oss given an IP endpoint sends virtual-hosted requests (`Host: <bucket>.oss-<region>.aliyuncs.com`, the
path holding only the key); given a host name (`localhost`) and `sldEnable`, path-style ones. Both are
checked, with V1 and V4 signatures and STS credentials. The SDK is installed once with npm into a cache
folder outside the repository (tests/node_sdk.py): without node, npm or the npm registry the tests are
skipped, unless AUTOTAG_REQUIRE_NODE_SDK=1 (.ci/run sets it)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import LONG_TERM, STS
from node_sdk import install

from localcloud.oss import LocalOSS

NODE_SDK = "ali-oss@6.23.0"

SCRIPT = r"""
const OSS = require('ali-oss');
const http = require('http');
const [endpoint, localhost, keyId, secret, token, bucket, style, signing] = process.argv.slice(2);
const options = {accessKeyId: keyId, accessKeySecret: secret, stsToken: token || undefined, bucket,
  region: 'oss-cn-hangzhou', authorizationV4: signing === 'v4', sldEnable: style === 'path', timeout: 20000};
// Given an IP endpoint, ali-oss names the bucket in the Host header (virtual-hosted); given a host name with
// sldEnable, in the path (path-style).
const at = style === 'path' ? localhost : endpoint;
const client = new OSS({...options, endpoint: at});
// ali-oss refuses to build URLs for an IP endpoint: presigned URLs name the host, path-style.
const presigner = new OSS({...options, endpoint: localhost, sldEnable: true});
const fetch = (url) => new Promise((resolve, reject) => {
  http.get(url, (res) => {
    const parts = [];
    res.on('data', (chunk) => parts.push(chunk));
    res.on('end', () => resolve({status: res.statusCode, body: Buffer.concat(parts).toString()}));
  }).on('error', reject);
});
const names = (objects) => (objects || []).map((o) => o.name);
const ODD = ['a\rb', 'ünï/çødé😀', 'with space', 'a+b', '100%', '50%25', 'a&b<c>"d\''];
(async () => {
  const seen = {};
  const step = async (name, action) => {
    try { seen[name] = await action(); } catch (e) {
      seen[name] = {error: {name: e.name, code: e.code, status: e.status, message: e.message}};
    }
  };
  const failure = async (action) => {
    try { await action(); return null; } catch (e) { return {name: e.name, code: e.code, status: e.status}; }
  };
  await step('putBucket', async () => (await client.putBucket(bucket)).res.status);
  await step('put', async () => (await client.put('dir/one.txt', Buffer.from('hello'), {
    headers: {'x-oss-tagging': 'team=a&stage=b%2Fc', 'x-oss-meta-owner': 'me', 'Content-Type': 'text/plain'},
  })).res.status);
  await step('head', async () => {
    const r = await client.head('dir/one.txt');
    return {status: r.status, meta: r.meta, tagCount: r.res.headers['x-oss-tagging-count'],
      type: r.res.headers['content-type'], length: r.res.headers['content-length']};
  });
  await step('get', async () => (await client.get('dir/one.txt')).content.toString());
  await step('utf8Meta', async () => {
    // ali-oss's way to UTF-8 metadata: headerEncoding 'latin1' sends (and signs) the UTF-8 bytes; headers
    // come back as those bytes, read as latin1.
    const utf8 = new OSS({...options, endpoint: at, headerEncoding: 'latin1'});
    await utf8.put('meta.txt', Buffer.from('m'), {meta: {name: 'Grüße 文件'}});
    return Buffer.from((await client.head('meta.txt')).meta.name, 'latin1').toString('utf8');
  });
  await step('tagsPut', async () => (await client.getObjectTagging('dir/one.txt')).tag);
  await step('putObjectTagging', async () => (await client.putObjectTagging('dir/one.txt',
    {team: 'c', 'k y': 'v+/=:'})).status);
  await step('tagsReplaced', async () => (await client.getObjectTagging('dir/one.txt')).tag);
  await step('deleteObjectTagging', async () => (await client.deleteObjectTagging('dir/one.txt')).status);
  await step('tagsDeleted', async () => (await client.getObjectTagging('dir/one.txt')).tag);
  await step('copy', async () => {
    await client.copy('dir/two.txt', 'dir/one.txt', {headers: {'x-oss-tagging': 'copied=yes',
      'x-oss-tagging-directive': 'Replace'}, meta: {copy: '1'}});
    const head = await client.head('dir/two.txt');
    return {body: (await client.get('dir/two.txt')).content.toString(), meta: head.meta,
      tags: (await client.getObjectTagging('dir/two.txt')).tag};
  });
  await step('append', async () => {
    const first = await client.append('log.txt', Buffer.from('ab'));
    const second = await client.append('log.txt', Buffer.from('cd'), {position: first.nextAppendPosition});
    return {positions: [first.nextAppendPosition, second.nextAppendPosition],
      body: (await client.get('log.txt')).content.toString()};
  });
  await step('multipartUpload', async () => {
    const body = Buffer.alloc(250 * 1024, 'x');
    body.write('end', body.length - 3);
    const r = await client.multipartUpload('big.bin', body, {partSize: 100 * 1024, parallel: 2,
      headers: {'x-oss-tagging': 'size=big'}, meta: {parts: '3'}});
    const head = await client.head('big.bin');
    const tail = (await client.get('big.bin', null, {headers: {Range: 'bytes=-3'}})).content.toString();
    return {status: r.res.status, length: head.res.headers['content-length'], meta: head.meta, tail,
      tags: (await client.getObjectTagging('big.bin')).tag};
  });
  await step('symlink', async () => {
    await client.putSymlink('link', 'dir/one.txt');
    return {target: (await client.getSymlink('link')).targetName,
      body: (await client.get('link')).content.toString()};
  });
  await step('putOdd', async () => {
    for (const key of ODD) await client.put(key, Buffer.from(key));
    return (await Promise.all(ODD.map(async (key) => (await client.get(key)).content.toString())));
  });
  await step('listedOdd', async () => names((await client.list({'max-keys': 1000})).objects));
  await step('deleteMulti', async () => (await client.deleteMulti(ODD)).deleted.map((d) => d.Key));
  await step('deleteMultiQuiet', async () => (await client.deleteMulti(['log.txt', 'never-was'],
    {quiet: true})).deleted);
  await step('listedAfter', async () => names((await client.list({'max-keys': 1000})).objects));
  await step('list', async () => {
    const page = await client.list({prefix: 'dir/', 'max-keys': 1});
    const next = await client.list({prefix: 'dir/', 'max-keys': 1, marker: page.nextMarker});
    const top = await client.list({delimiter: '/'});
    return {first: names(page.objects), truncated: page.isTruncated, next: page.nextMarker,
      second: names(next.objects), secondTruncated: next.isTruncated, top: names(top.objects),
      prefixes: top.prefixes};
  });
  await step('listV2', async () => {
    const page = await client.listV2({prefix: 'dir/', 'max-keys': 1});
    const next = await client.listV2({prefix: 'dir/', 'max-keys': 1,
      'continuation-token': page.nextContinuationToken});
    const top = await client.listV2({delimiter: '/', 'start-after': 'big.bin'});
    return {first: names(page.objects), truncated: page.isTruncated, second: names(next.objects),
      secondTruncated: next.isTruncated, top: names(top.objects), prefixes: top.prefixes};
  });
  await step('presigned', async () => {
    const url = signing === 'v4'
      ? await presigner.signatureUrlV4('GET', 60, {}, 'dir/one.txt')
      : presigner.signatureUrl('dir/one.txt', {expires: 60});
    const tampered = url.replace('dir/one.txt', 'dir/two.txt');
    return {good: await fetch(url), tampered: (await fetch(tampered)).status};
  });
  await step('versioning', async () => {
    await client.putBucketVersioning(bucket, 'Enabled');
    const first = (await client.put('v.txt', Buffer.from('one'))).res.headers['x-oss-version-id'];
    const second = (await client.put('v.txt', Buffer.from('two'))).res.headers['x-oss-version-id'];
    const old = (await client.get('v.txt', null, {versionId: first})).content.toString();
    await client.putObjectTagging('v.txt', {old: 'yes'}, {versionId: first});
    const oldTags = (await client.getObjectTagging('v.txt', {versionId: first})).tag;
    const newTags = (await client.getObjectTagging('v.txt')).tag;
    const listed = (await client.getBucketVersions({prefix: 'v.txt'})).objects.map((o) => o.versionId);
    return {status: (await client.getBucketVersioning(bucket)).versionStatus, distinct: first !== second,
      old, oldTags, newTags, listed: listed.length, both: listed.includes(first) && listed.includes(second)};
  });
  seen.wrongSecret = await failure(() => new OSS({...options, endpoint: at, accessKeySecret: 'wrong'})
    .get('dir/one.txt'));
  // A HEAD's error has no body: ali-oss reads it from the base64 x-oss-err header.
  seen.wrongSecretHead = await failure(() => new OSS({...options, endpoint: at, accessKeySecret: 'wrong'})
    .head('dir/one.txt'));
  seen.noBucket = await failure(() => new OSS({...options, endpoint: at, bucket: `${bucket}-none`})
    .get('dir/one.txt'));
  seen.noKey = await failure(() => client.get('missing'));
  seen.noKeyHead = await failure(() => client.head('missing'));
  seen.noKeyTags = await failure(() => client.getObjectTagging('missing'));
  // The local OSS processes no images: it says so rather than hand back the unprocessed object.
  seen.process = await failure(() => client.get('dir/one.txt', null, {process: 'image/resize,w_10'}));
  console.log(JSON.stringify(seen));
})().catch((error) => { console.error(String(error)); process.exit(1); });
"""

ODD = ["a\rb", "ünï/çødé😀", "with space", "a+b", "100%", "50%25", "a&b<c>\"d'"]


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    """The node_modules folder holding ali-oss."""
    return install(NODE_SDK)


def _run(
    node_sdk: Path, oss: LocalOSS, tmp_path: Path, style: str, signing: str, sts: bool
) -> dict[str, Any]:
    script = tmp_path / "ali_oss_user.js"
    script.write_text(SCRIPT)
    credential = STS if sts else LONG_TERM
    bucket = f"ali-{uuid.uuid4().hex[:12]}"
    done = subprocess.run(
        [
            "node",
            str(script),
            oss.endpoint,
            f"http://localhost:{oss.port}",
            credential.access_key_id,
            credential.access_key_secret,
            credential.security_token or "",
            bucket,
            style,
            signing,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        # `localhost` must reach the server on 127.0.0.1 even where it resolves to ::1 first
        env={**os.environ, "NODE_PATH": str(node_sdk), "NODE_OPTIONS": "--dns-result-order=ipv4first"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


@pytest.mark.parametrize(
    ("style", "signing", "sts"),
    [
        ("virtual-hosted", "v1", False),
        ("virtual-hosted", "v4", False),
        ("virtual-hosted", "v4", True),
        ("path", "v1", True),
    ],
    ids=["virtual-hosted-v1", "virtual-hosted-v4", "virtual-hosted-sts-v4", "path-sts-v1"],
)
def test_what_an_ali_oss_user_does(
    node_sdk: Path, oss: LocalOSS, tmp_path: Path, style: str, signing: str, sts: bool
) -> None:
    seen = _run(node_sdk, oss, tmp_path, style, signing, sts)
    assert seen["putBucket"] == 200
    assert seen["put"] == 200
    assert seen["head"] == {
        "status": 200,
        "meta": {"owner": "me"},
        "tagCount": "2",
        "type": "text/plain",
        "length": "5",
    }
    assert seen["get"] == "hello"
    assert seen["utf8Meta"] == "Grüße 文件"
    assert seen["tagsPut"] == {"team": "a", "stage": "b/c"}
    assert seen["putObjectTagging"] == 200
    assert seen["tagsReplaced"] == {"team": "c", "k y": "v+/=:"}
    assert seen["deleteObjectTagging"] == 204
    assert seen["tagsDeleted"] == {}
    assert seen["copy"] == {"body": "hello", "meta": {"copy": "1"}, "tags": {"copied": "yes"}}
    assert seen["append"] == {"positions": ["2", "4"], "body": "abcd"}
    assert seen["multipartUpload"] == {
        "status": 200,
        "length": str(250 * 1024),
        "meta": {"parts": "3"},
        "tail": "end",
        "tags": {"size": "big"},
    }
    assert seen["symlink"] == {"target": "dir/one.txt", "body": "hello"}
    assert seen["putOdd"] == ODD
    assert seen["listedOdd"] == sorted(
        [*ODD, "big.bin", "dir/one.txt", "dir/two.txt", "link", "log.txt", "meta.txt"]
    )
    assert seen["deleteMulti"] == ODD
    assert seen["deleteMultiQuiet"] == []
    assert seen["listedAfter"] == ["big.bin", "dir/one.txt", "dir/two.txt", "link", "meta.txt"]
    assert seen["list"] == {
        "first": ["dir/one.txt"],
        "truncated": True,
        "next": "dir/one.txt",
        "second": ["dir/two.txt"],
        "secondTruncated": False,
        "top": ["big.bin", "link", "meta.txt"],
        "prefixes": ["dir/"],
    }
    assert seen["listV2"] == {
        "first": ["dir/one.txt"],
        "truncated": True,
        "second": ["dir/two.txt"],
        "secondTruncated": False,
        "top": ["link", "meta.txt"],
        "prefixes": ["dir/"],
    }
    assert seen["presigned"] == {"good": {"status": 200, "body": "hello"}, "tampered": 403}
    assert seen["versioning"] == {
        "status": "Enabled",
        "distinct": True,
        "old": "one",
        "oldTags": {"old": "yes"},
        "newTags": {},
        "listed": 2,
        "both": True,
    }
    assert seen["wrongSecret"] == {
        "name": "SignatureDoesNotMatchError",
        "code": "SignatureDoesNotMatch",
        "status": 403,
    }
    assert seen["wrongSecretHead"] == seen["wrongSecret"]
    assert seen["noBucket"] == {"name": "NoSuchBucketError", "code": "NoSuchBucket", "status": 404}
    assert seen["noKey"] == {"name": "NoSuchKeyError", "code": "NoSuchKey", "status": 404}
    assert seen["noKeyHead"] == {"name": "NoSuchKeyError", "code": "NoSuchKey", "status": 404}
    assert seen["noKeyTags"] == {"name": "NoSuchKeyError", "code": "NoSuchKey", "status": 404}
    assert seen["process"] == {"name": "NotImplementedError", "code": "NotImplemented", "status": 501}
