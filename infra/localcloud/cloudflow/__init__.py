"""The local CloudFlow (formerly Serverless Workflow / FnF): flows of FDL v1 definitions run by a local
engine, behind CloudFlow's RPC API. docs/cloudflow.md says what it supports, with sources."""

from flowspec.definition import DefinitionError, Flow, parse_definition

from .api import LocalCloudFlow

__all__ = ["DefinitionError", "Flow", "LocalCloudFlow", "parse_definition"]
