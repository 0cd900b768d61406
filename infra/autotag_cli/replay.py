"""`autotag replay`: re-drive dead-lettered invocations through the same function, idempotently.

Dead letters come from the local FC's store, or from a JSON-lines export of the MNS queue that is the
function's on-failure destination in production. Each replayed OSS event carries its provenance
(`autotagReplay`: the failed invocation's request id, attempts, when it was replayed), which the function
echoes as `replayOf` in its summary and log. Tagging is idempotent, so replaying twice writes nothing new."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from localcloud.fc import DeadLetter, DeadLetterError, DeadLetterStore, read_dead_letters

from .fc_options import DEFAULT_DEAD_LETTERS, in_process_fc, read_template, template_option


def with_provenance(letter: DeadLetter) -> bytes:
    """The original event, plus where it came from when it is an OSS event (timer events are replayed as
    they were: their payload is the sweep's own input)."""
    try:
        document = json.loads(letter.payload)
    except json.JSONDecodeError:
        return letter.payload.encode()
    if isinstance(document, dict) and "events" in document:
        document["autotagReplay"] = {
            "originalRequestId": letter.request_id,
            "deadLetterId": letter.id,
            "attempts": letter.attempts,
            "replayedAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    return json.dumps(document, ensure_ascii=False).encode()


def _subject(letter: DeadLetter) -> str:
    try:
        document = json.loads(letter.payload)
        return ", ".join(r["oss"]["object"]["key"] for r in document["events"])
    except (ValueError, KeyError, TypeError):
        return "timer" if '"triggerTime"' in letter.payload else "?"


@click.command()
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DEAD_LETTERS,
    show_default=True,
    help="The local FC's dead-letter store (replayed letters are removed from it).",
)
@click.option(
    "--file",
    "export",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON-lines export of destination messages instead (left as it is).",
)
@click.option("--dry-run", is_flag=True, help="List what would be replayed; invoke nothing.")
@template_option
def replay(store: Path, export: Path | None, dry_run: bool, template_path: Path) -> None:
    """Re-drive dead-lettered events through their function."""
    try:
        letters = read_dead_letters(export) if export else DeadLetterStore(store).all()
    except DeadLetterError as error:
        raise click.ClickException(str(error)) from error
    template = read_template(template_path)
    table = Table(title=f"dead letters from {export or store}" + (" (dry run)" if dry_run else ""))
    for column in ("function", "objects", "failed request", "attempts", "error", "replay"):
        table.add_column(column)
    replayed: set[str] = set()
    failed = 0
    fc = in_process_fc(template)
    with fc:
        for letter in letters:
            outcome = "would replay"
            if letter.function not in template.functions:
                outcome, failed = f"no function {letter.function!r} in the template", failed + 1
            elif not dry_run:
                result = fc.invoke(letter.function, with_provenance(letter))
                if result.ok:
                    outcome = f"replayed ({result.request_id})"
                    replayed.add(letter.id)
                else:
                    outcome, failed = f"failed again: {result.error_message}", failed + 1
            table.add_row(
                letter.function,
                _subject(letter),
                letter.request_id,
                str(letter.attempts),
                letter.error_message[:120],
                outcome,
            )
    if replayed and not export:
        DeadLetterStore(store).remove(replayed)
    Console().print(table)
    click.echo(f"{len(letters)} dead letters, {len(replayed)} replayed, {failed} failed")
    if failed:
        raise SystemExit(1)
