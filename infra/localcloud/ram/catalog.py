"""What the local cloud's RAM understands: the actions of the services it runs (OSS, FC, MNS for dead
letters) and the condition keys it fills in. A policy that names anything else is refused when it loads,
because an action or key the evaluator does not know would otherwise be silently ignored.

Action names follow Alibaba Cloud's OSS "authorization syntax and elements" page, FC 2.0's "Policies and
sample policies" page and MNS's RAM action list (sources in docs/least-privilege.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ConditionKeyType = Literal["string", "number", "date", "bool", "ip"]


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


OSS_ACTIONS = _names(
    """
    ListBuckets ListUserDataRedundancyTransition ActivateProduct CreateOrder DescribeRegions
    PutPublicAccessBlock GetPublicAccessBlock DeletePublicAccessBlock
    PutBucket DeleteBucket GetBucketInfo GetBucketLocation GetBucketStat ListObjects ListObjectVersions
    PutBucketVersioning GetBucketVersioning PutBucketAcl GetBucketAcl ListMultipartUploads
    InitiateBucketWorm AbortBucketWorm CompleteBucketWorm ExtendBucketWorm GetBucketWorm
    PutBucketLogging GetBucketLogging DeleteBucketLogging PutBucketWebsite GetBucketWebsite
    DeleteBucketWebsite PutBucketReferer GetBucketReferer PutBucketLifecycle GetBucketLifecycle
    DeleteBucketLifecycle PutBucketCors GetBucketCors DeleteBucketCors PutBucketPolicy GetBucketPolicy
    DeleteBucketPolicy GetBucketPolicyStatus PutBucketTagging GetBucketTagging DeleteBucketTagging
    PutBucketEncryption GetBucketEncryption DeleteBucketEncryption PutBucketRequestPayment
    GetBucketRequestPayment PutBucketReplication GetBucketReplication DeleteBucketReplication
    GetBucketReplicationLocation GetBucketReplicationProgress PutBucketInventory GetBucketInventory
    DeleteBucketInventory PutBucketAccessMonitor GetBucketAccessMonitor PutBucketTransferAcceleration
    GetBucketTransferAcceleration PutBucketHttpsConfig GetBucketHttpsConfig PutBucketResourceGroup
    GetBucketResourceGroup PutBucketArchiveDirectRead GetBucketArchiveDirectRead PutBucketPublicAccessBlock
    GetBucketPublicAccessBlock DeleteBucketPublicAccessBlock PutBucketOverwriteConfig
    GetBucketOverwriteConfig PutCname GetCname ListCname DeleteCname CreateCnameToken GetCnameToken
    PutStyle GetStyle ListStyle DeleteStyle OpenMetaQuery GetMetaQueryStatus DoMetaQuery CloseMetaQuery
    PutLiveChannel ListLiveChannel DeleteLiveChannel PutLiveChannelStatus GetLiveChannel
    GetLiveChannelStat GetLiveChannelHistory PostVodPlaylist GetVodPlaylist
    CreateAccessPoint GetAccessPoint DeleteAccessPoint ListAccessPoints PutAccessPointPolicy
    GetAccessPointPolicy DeleteAccessPointPolicy
    PutObject GetObject GetObjectVersion DeleteObject DeleteObjectVersion AbortMultipartUpload ListParts
    PutObjectAcl PutObjectVersionAcl GetObjectAcl GetObjectVersionAcl RestoreObject RestoreObjectVersion
    PutObjectTagging PutObjectVersionTagging GetObjectTagging GetObjectVersionTagging DeleteObjectTagging
    DeleteObjectVersionTagging PostProcessTask ProcessImm SealAppendObject
    """
)

FC_ACTIONS = _names(
    """
    ListServices CreateService GetService UpdateService DeleteService ListFunctions CreateFunction
    GetFunction UpdateFunction DeleteFunction GetFunctionCode InvokeFunction CreateTrigger GetTrigger
    ListTriggers UpdateTrigger DeleteTrigger PutFunctionAsyncInvokeConfig GetFunctionAsyncInvokeConfig
    DeleteFunctionAsyncInvokeConfig ListFunctionAsyncInvokeConfigs PublishServiceVersion
    ListServiceVersions DeleteServiceVersion CreateAlias GetAlias ListAliases UpdateAlias DeleteAlias
    CreateCustomDomain GetCustomDomain ListCustomDomains UpdateCustomDomain DeleteCustomDomain
    PutProvisionConfig GetProvisionConfig ListProvisionConfigs PutFunctionOnDemandConfig
    GetFunctionOnDemandConfig DeleteFunctionOnDemandConfig ListOnDemandConfigs ListInstances
    InvokeHTTPTrigger TagResource UntagResource GetResourceTags ListTaggedResources
    StopStatefulAsyncInvocation GetStatefulAsyncInvocation ListStatefulAsyncInvocations
    """
)

MNS_ACTIONS = _names(
    """
    SendMessage BatchSendMessage ReceiveMessage BatchReceiveMessage DeleteMessage BatchDeleteMessage
    PeekMessage BatchPeekMessage ChangeMessageVisibility PublishMessage GetQueueAttributes
    SetQueueAttributes CreateQueue DeleteQueue ListQueue
    """
)

CONDITION_KEYS: dict[str, ConditionKeyType] = {
    "acs:SourceIp": "ip",
    "acs:SecureTransport": "bool",
    "acs:CurrentTime": "date",
    "acs:AccessId": "string",
    "acs:UserAgent": "string",
    "oss:Prefix": "string",
    "oss:Delimiter": "string",
}


@dataclass(frozen=True)
class Catalog:
    actions: dict[str, frozenset[str]]  # service code -> action names
    keys: dict[str, ConditionKeyType]

    def action_problem(self, pattern: str) -> str:
        """Why `pattern` cannot be acted on ("" when it names at least one known action)."""
        if pattern == "*":
            return ""
        service, colon, name = pattern.partition(":")
        if not colon or not name:
            return "is not <service>:<action> (e.g. oss:GetObject)"
        known = self.actions.get(service.lower())
        if known is None:
            return (
                f"is a {service!r} action; the local cloud evaluates only "
                f"{', '.join(sorted(self.actions))} actions"
            )
        regex = re.compile(
            "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name), re.IGNORECASE
        )
        if not any(regex.fullmatch(action) for action in known):
            return f"matches no {service} action (check the spelling against docs/least-privilege.md)"
        return ""

    def condition_key_type(self, key: str) -> ConditionKeyType | None:
        return next((t for k, t in self.keys.items() if k.lower() == key.lower()), None)

    def condition_keys(self) -> list[str]:
        return sorted(self.keys)


CATALOG = Catalog({"oss": OSS_ACTIONS, "fc": FC_ACTIONS, "mns": MNS_ACTIONS}, CONDITION_KEYS)
