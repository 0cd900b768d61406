"""The local OSS authorises requests made with a RAM role's STS credentials against the role's policies,
API family by API family, through the real oss2 client; the account's own AccessKey may do anything."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import oss2
import pytest
import requests
from conftest import REGION, BucketFactory, make_auth, tags_of

from localcloud.oss import Credential, LocalOSS
from localcloud.oss.authorization import ACTIONS
from localcloud.oss.postform import signed_form
from localcloud.ram import CATALOG, Role, RoleSession, parse_policy, role_arn, session_for

ROUTING = Path(__file__).parents[2] / "infra" / "localcloud" / "oss" / "routing.py"


def new_role(oss: LocalOSS, *statements: dict[str, Any]) -> RoleSession:
    """The STS credentials of a new role with these statements, accepted by the local OSS."""
    document = {"Version": "1", "Statement": list(statements)}
    role = Role(role_arn(f"test-{uuid.uuid4().hex[:8]}"), (parse_policy(document, CATALOG),))
    session = session_for(role)
    oss.add_credentials(
        [Credential(session.access_key_id, session.access_key_secret, session.security_token, role)]
    )
    return session


def as_role(oss: LocalOSS, bucket: str, *statements: dict[str, Any], auth: str = "v1") -> oss2.Bucket:
    """An oss2 client signing with the STS credentials of a new role that has these statements."""
    session = new_role(oss, *statements)
    version = oss2.AUTH_VERSION_4 if auth == "v4" else oss2.AUTH_VERSION_1
    sts = oss2.StsAuth(
        session.access_key_id, session.access_key_secret, session.security_token, auth_version=version
    )
    return oss2.Bucket(sts, oss.endpoint, bucket, region=REGION)


def allow(actions: list[str], *resources: str, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": list(resources), **extra}


def denied(call: Any) -> oss2.exceptions.ServerError:
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        call()
    error = raised.value
    assert (error.status, error.code) == (403, "AccessDenied"), error
    return error


@pytest.fixture
def owner(new_bucket: BucketFactory) -> oss2.Bucket:
    return new_bucket()


def test_every_api_the_local_oss_serves_has_its_ram_action() -> None:
    routed = set(
        re.findall(
            r'"([A-Z][A-Za-z0-9]+)", (?:buckets|inventory|objects|multipart|object_tagging|post_object)\.',
            ROUTING.read_text(),
        )
    )
    assert len(routed) > 30 and routed <= set(ACTIONS), routed - set(ACTIONS)


@pytest.mark.parametrize("auth", ["v1", "v4"])
def test_object_reads_need_get_object_on_the_object(oss: LocalOSS, owner: oss2.Bucket, auth: str) -> None:
    name = owner.bucket_name
    owner.put_object("public/a.txt", b"a")
    owner.put_object("private/b.txt", b"b")
    role = as_role(oss, name, allow(["oss:GetObject"], f"acs:oss:*:*:{name}/public/*"), auth=auth)
    assert role.get_object("public/a.txt").read() == b"a"
    assert role.head_object("public/a.txt").content_length == 1
    error = denied(lambda: role.get_object("private/b.txt"))
    assert error.ec == "0003-00000202"  # an implicit deny
    assert "AccessDeniedDetail" in error.details  # its AuthAction: test_a_denial_answers_as_oss_does
    head = denied(lambda: role.head_object("private/b.txt"))  # HEAD: the error rides in x-oss-err
    assert head.request_id and head.message
    denied(lambda: role.put_object("public/c.txt", b"c"))  # reading is not writing


def test_a_denial_answers_as_oss_does(oss: LocalOSS, owner: oss2.Bucket) -> None:
    role = as_role(oss, owner.bucket_name, allow(["oss:GetObject"], f"acs:oss:*:*:{owner.bucket_name}/x/*"))
    url = role.sign_url("GET", "y/secret.txt", 60)
    response = requests.get(url, timeout=10)
    assert response.status_code == 403
    assert response.headers["x-oss-ec"] == "0003-00000202"
    body = response.text
    assert (
        "<Code>AccessDenied</Code>" in body and f"<RequestId>{response.headers['x-oss-request-id']}" in body
    )
    assert "<NoPermissionType>ImplicitDeny</NoPermissionType>" in body
    assert "<AuthAction>oss:GetObject</AuthAction>" in body


def test_an_explicit_deny_wins(oss: LocalOSS, owner: oss2.Bucket) -> None:
    name = owner.bucket_name
    owner.put_object("keep/a.txt", b"a")
    role = as_role(
        oss,
        name,
        allow(["oss:*"], f"acs:oss:*:*:{name}", f"acs:oss:*:*:{name}/*"),
        {"Effect": "Deny", "Action": ["oss:DeleteObject"], "Resource": [f"acs:oss:*:*:{name}/keep/*"]},
    )
    assert role.get_object("keep/a.txt").read() == b"a"
    error = denied(lambda: role.delete_object("keep/a.txt"))
    assert error.ec == "0003-00000201"
    role.put_object("scratch/b.txt", b"b")
    role.delete_object("scratch/b.txt")


def test_a_version_id_needs_the_version_action_too(oss: LocalOSS, new_bucket: BucketFactory) -> None:
    owner = new_bucket(versioning="Enabled")
    name = owner.bucket_name
    version = owner.put_object("a.txt", b"a", headers={"x-oss-tagging": "k=v"}).versionid
    plain = as_role(
        oss,
        name,
        allow(
            ["oss:GetObject", "oss:GetObjectTagging", "oss:PutObjectTagging", "oss:DeleteObjectTagging"],
            f"acs:oss:*:*:{name}/*",
        ),
    )

    def params() -> dict[str, str]:  # oss2 adds its sub-resource to the dict it is given
        return {"versionId": version}

    assert plain.get_object("a.txt").read() == b"a"  # the current version: the plain actions suffice
    assert dict(plain.get_object_tagging("a.txt").tag_set.tagging_rule) == {"k": "v"}
    for call in (
        lambda b: b.get_object("a.txt", params=params()),
        lambda b: b.head_object("a.txt", params=params()),
        lambda b: b.get_object_tagging("a.txt", params=params()),
        lambda b: b.put_object_tagging("a.txt", oss2.models.Tagging(), params=params()),
        lambda b: b.delete_object_tagging("a.txt", params=params()),
    ):
        denied(lambda call=call: call(plain))
    versioned = as_role(
        oss,
        name,
        allow(
            [
                "oss:GetObject",
                "oss:GetObjectVersion",
                "oss:GetObjectTagging",
                "oss:GetObjectVersionTagging",
                "oss:PutObjectTagging",
                "oss:PutObjectVersionTagging",
                "oss:DeleteObjectTagging",
                "oss:DeleteObjectVersionTagging",
            ],
            f"acs:oss:*:*:{name}/*",
        ),
    )
    assert versioned.get_object("a.txt", params=params()).read() == b"a"
    assert versioned.head_object("a.txt", params=params()).versionid == version
    assert dict(versioned.get_object_tagging("a.txt", params=params()).tag_set.tagging_rule) == {"k": "v"}
    versioned.delete_object_tagging("a.txt", params=params())
    assert tags_of(owner, "a.txt", versionId=version) == {}
    denied(lambda: versioned.delete_object("a.txt", params=params()))  # neither DeleteObject nor its version


def test_listings_are_bucket_actions_with_prefix_and_delimiter_conditions(
    oss: LocalOSS, owner: oss2.Bucket
) -> None:
    name = owner.bucket_name
    for key in ("home/ann/1", "home/bob/2", "shared/3"):
        owner.put_object(key, b"x")
    role = as_role(
        oss,
        name,
        allow(
            ["oss:ListObjects"], f"acs:oss:*:*:{name}", Condition={"StringLike": {"oss:Prefix": "home/ann/*"}}
        ),
    )
    assert [o.key for o in role.list_objects(prefix="home/ann/").object_list] == ["home/ann/1"]
    assert [o.key for o in role.list_objects_v2(prefix="home/ann/").object_list] == ["home/ann/1"]
    denied(lambda: role.list_objects(prefix="home/"))
    denied(lambda: role.list_objects())  # no prefix is judged as the empty prefix
    denied(lambda: role.list_object_versions(prefix="home/ann/"))  # another action
    objects_only = as_role(
        oss, name, allow(["oss:ListObjects", "oss:GetBucketVersioning"], f"acs:oss:*:*:{name}/*")
    )
    denied(lambda: objects_only.list_objects())  # listing acts on the bucket, not on its objects
    denied(lambda: objects_only.get_bucket_versioning())
    bucket_level = as_role(oss, name, allow(["oss:GetBucketVersioning"], f"acs:oss:*:*:{name}"))
    assert bucket_level.get_bucket_versioning().status is None


def test_uploads_that_set_tags_need_put_object_tagging(oss: LocalOSS, owner: oss2.Bucket) -> None:
    name = owner.bucket_name
    writer = as_role(oss, name, allow(["oss:PutObject"], f"acs:oss:*:*:{name}/*"))
    writer.put_object("a.txt", b"a")
    denied(lambda: writer.put_object("b.txt", b"b", headers={"x-oss-tagging": "k=v"}))
    denied(lambda: writer.put_symlink("a.txt", "link-b", headers={"x-oss-tagging": "k=v"}))
    denied(lambda: writer.init_multipart_upload("c.bin", headers={"x-oss-tagging": "k=v"}))
    writer.put_symlink("a.txt", "link-a")
    tagger = as_role(oss, name, allow(["oss:PutObject", "oss:PutObjectTagging"], f"acs:oss:*:*:{name}/*"))
    tagger.put_object("b.txt", b"b", headers={"x-oss-tagging": "k=v"})
    assert tags_of(owner, "b.txt") == {"k": "v"}


def test_multipart_uploads(oss: LocalOSS, owner: oss2.Bucket) -> None:
    name = owner.bucket_name
    writer = as_role(oss, name, allow(["oss:PutObject"], f"acs:oss:*:*:{name}/*"))
    upload = writer.init_multipart_upload("big.bin").upload_id
    part = writer.upload_part("big.bin", upload, 1, b"x" * 10)
    denied(lambda: writer.list_parts("big.bin", upload))
    denied(lambda: writer.abort_multipart_upload("big.bin", upload))
    writer.complete_multipart_upload("big.bin", upload, [oss2.models.PartInfo(1, part.etag)])
    assert owner.get_object("big.bin").read() == b"x" * 10
    tagged = owner.init_multipart_upload("tagged.bin", headers={"x-oss-tagging": "k=v"}).upload_id
    part = writer.upload_part("tagged.bin", tagged, 1, b"y")
    denied(
        lambda: writer.complete_multipart_upload("tagged.bin", tagged, [oss2.models.PartInfo(1, part.etag)])
    )
    manager = as_role(
        oss, name, allow(["oss:ListParts", "oss:AbortMultipartUpload"], f"acs:oss:*:*:{name}/*")
    )
    assert [p.part_number for p in manager.list_parts("tagged.bin", tagged).parts] == [1]
    manager.abort_multipart_upload("tagged.bin", tagged)


def test_reading_through_a_symlink_needs_the_target_too(oss: LocalOSS, owner: oss2.Bucket) -> None:
    name = owner.bucket_name
    owner.put_object("private/target.txt", b"t")
    owner.put_symlink("private/target.txt", "public/link")
    role = as_role(oss, name, allow(["oss:GetObject"], f"acs:oss:*:*:{name}/public/*"))
    assert role.get_symlink("public/link").target_key == "private/target.txt"  # the link itself
    denied(lambda: role.get_object("public/link"))
    denied(lambda: role.head_object("public/link"))
    both = as_role(
        oss, name, allow(["oss:GetObject"], f"acs:oss:*:*:{name}/public/*", f"acs:oss:*:*:{name}/private/*")
    )
    assert both.get_object("public/link").read() == b"t"


def test_copies_read_the_source_and_write_the_destination(oss: LocalOSS, owner: oss2.Bucket) -> None:
    name = owner.bucket_name
    owner.put_object("in/plain.txt", b"p")
    owner.put_object("in/tagged.txt", b"t", headers={"x-oss-tagging": "k=v"})
    writer_only = as_role(oss, name, allow(["oss:PutObject"], f"acs:oss:*:*:{name}/out/*"))
    denied(lambda: writer_only.copy_object(name, "in/plain.txt", "out/plain.txt"))
    copier = as_role(
        oss,
        name,
        allow(["oss:GetObject"], f"acs:oss:*:*:{name}/in/*"),
        allow(["oss:PutObject"], f"acs:oss:*:*:{name}/out/*"),
    )
    copier.copy_object(name, "in/plain.txt", "out/plain.txt")
    denied(lambda: copier.copy_object(name, "in/tagged.txt", "out/tagged.txt"))  # the copy carries tags
    denied(lambda: copier.copy_object(name, "out/plain.txt", "in/again.txt"))  # wrong way round
    tag_copier = as_role(
        oss,
        name,
        allow(["oss:GetObject", "oss:GetObjectTagging"], f"acs:oss:*:*:{name}/in/*"),
        allow(["oss:PutObject", "oss:PutObjectTagging"], f"acs:oss:*:*:{name}/out/*"),
    )
    tag_copier.copy_object(name, "in/tagged.txt", "out/tagged.txt")
    assert tags_of(owner, "out/tagged.txt") == {"k": "v"}


def test_a_batch_delete_is_refused_whole_when_any_key_is_denied(oss: LocalOSS, owner: oss2.Bucket) -> None:
    name = owner.bucket_name
    for key in ("tmp/1", "tmp/2", "keep/3"):
        owner.put_object(key, b"x")
    role = as_role(oss, name, allow(["oss:DeleteObject"], f"acs:oss:*:*:{name}/tmp/*"))
    error = denied(lambda: role.batch_delete_objects(["tmp/1", "keep/3"]))
    assert error.ec == "0003-00000204"
    assert {o.key for o in owner.list_objects().object_list} == {"tmp/1", "tmp/2", "keep/3"}
    assert sorted(role.batch_delete_objects(["tmp/1", "tmp/2"]).deleted_keys) == ["tmp/1", "tmp/2"]


def test_form_uploads_are_authorised_for_the_key_they_create(oss: LocalOSS, owner: oss2.Bucket) -> None:
    name = owner.bucket_name
    session = new_role(oss, allow(["oss:PutObject"], f"acs:oss:*:*:{name}/inbox/*"))
    credential = Credential(session.access_key_id, session.access_key_secret, session.security_token)
    for key, status in (("inbox/a.txt", 204), ("elsewhere/b.txt", 403)):
        fields = signed_form(credential, key)
        response = requests.post(
            f"{oss.endpoint}/{name}/", data=fields, files={"file": ("a.txt", b"x")}, timeout=10
        )
        assert response.status_code == status, response.text


def test_the_account_access_key_and_the_admin_session_may_do_anything(
    oss: LocalOSS, owner: oss2.Bucket
) -> None:
    for auth in ("v4", "sts-v1"):
        client = oss2.Bucket(make_auth(auth), oss.endpoint, owner.bucket_name, region=REGION)
        client.put_object("k", b"x", headers={"x-oss-tagging": "a=b"})
        client.delete_object("k")
        client.put_bucket_versioning(oss2.models.BucketVersioningConfig("Suspended"))


def test_a_grant_on_one_bucket_covers_no_key_of_another(oss: LocalOSS, new_bucket: BucketFactory) -> None:
    """template.yml grants on `acs:oss:*:*:autotag-demo/*`. In another bucket, the key `x:autotag-demo/y`
    makes the resource `acs:oss:<region>:<account>:<bucket>/x:autotag-demo/y`, which a match over the
    whole ARN would let the grant's first `*`s reach: the local OSS refuses it, as a field-wise match does."""
    other = new_bucket()
    other.put_object("x:autotag-demo/y", b"x")
    role = as_role(
        oss,
        other.bucket_name,
        allow(
            ["oss:GetObject", "oss:GetObjectTagging", "oss:PutObjectTagging"], "acs:oss:*:*:autotag-demo/*"
        ),
    )
    denied(lambda: role.get_object("x:autotag-demo/y"))
    denied(lambda: role.get_object_tagging("x:autotag-demo/y"))
    denied(lambda: role.put_object_tagging("x:autotag-demo/y", oss2.models.Tagging()))
    assert tags_of(other, "x:autotag-demo/y") == {}
