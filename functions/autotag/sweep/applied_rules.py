"""A copy of the rules document a scope's completed pass applied, kept sealed beside its checkpoint.

After a change of rules, a selected pass (checkpoint.py) lists only what the change from the previous rules
to the new ones can reach; it needs the previous document, and only the system's own copy is believed (the
rules object itself already holds the new version). The copy is `rules-<fingerprint>.json` under the
scope's state folder, sealed like every state document (sealing.py: for its place and time), holding the
normalised document that the fingerprint hashes — so a copy is believed only when its seal holds AND it
hashes to the fingerprint asked for. Anything else (missing, forged, copied from another scope, a document
this version cannot load) is reported and the caller reconciles every object instead: extra work, never a
skipped object.

One copy per scope at a time (two while a pass after a change runs): the new rules' copy is written when
such a pass completes, then the previous one deleted. A rules file is at most 1 MiB (rules/loader.py); its
normalised form, with non-ASCII text escaped, at most 3 MiB; a copy over MAX_KEPT_BYTES is neither written
nor read."""

from __future__ import annotations

import contextlib
import json

from ..gateway import OssFailure, OutOfTime
from ..rules import RulesError, RuleSet, parse_rules
from ..rules.loader import MAX_FILE_BYTES
from .sealing import NotBelieved
from .state import StateStore

MAX_KEPT_BYTES = 8 * MAX_FILE_BYTES


def kept_rules_key(store: StateStore, fingerprint: str) -> str:
    return f"{store.base}rules-{fingerprint}.json"


def keep_rules(store: StateStore, rules: RuleSet) -> str:
    """Write the sealed copy of `rules`; "" when written, else why not (the caller reports it)."""
    if not rules.document:
        return "the rules carry no document to keep"
    key = kept_rules_key(store, rules.fingerprint)
    document = {"fingerprint": rules.fingerprint, "rules": json.loads(rules.document)}
    try:
        written = store.write_sealed(key, document, limit=MAX_KEPT_BYTES)
    except (OssFailure, OutOfTime) as failed:  # the pass is complete all the same: keep that
        return f"writing {key} failed ({failed})"
    return "" if written else f"the rules document is over {MAX_KEPT_BYTES} bytes sealed"


def kept_rules(store: StateStore, fingerprint: str) -> RuleSet | str:
    """The rules whose fingerprint is `fingerprint`, from the scope's sealed copy; else why not."""
    key = kept_rules_key(store, fingerprint)
    where = f"oss://{store.gateway.bucket.bucket_name}/{key}"
    try:
        document = store.read_sealed(key, MAX_KEPT_BYTES)
    except NotBelieved as doubt:
        return f"the copy of rules {fingerprint} at {where} is not believed ({doubt})"
    if document is None:
        return f"no copy of rules {fingerprint} is kept at {where}"
    try:
        rules = parse_rules(document.get("rules"), f"the copy of rules {fingerprint}", store.secrets)
    except RulesError as error:
        return f"the copy of rules {fingerprint} at {where} does not load ({str(error)[:300]})"
    if rules.fingerprint != fingerprint or document.get("fingerprint") != fingerprint:
        return f"the copy at {where} holds rules {rules.fingerprint}, not {fingerprint}"
    return rules


def forget_rules(store: StateStore, fingerprint: str) -> None:
    """Delete a copy no pass needs any more (a missing one is harmless; a failure leaves it)."""
    with contextlib.suppress(OssFailure, OutOfTime):
        store.gateway.delete_object(kept_rules_key(store, fingerprint))
