"""`autotag replay`: re-drive dead-lettered invocations through the same function, idempotently.

Dead letters come from the local FC's store, or from a JSON-lines export of the MNS queue that is the
function's on-failure destination in production. Each replayed OSS event carries its provenance
(`autotagReplay`: the failed invocation's request id, attempts, when it was replayed; on an EventBridge
delivery's CloudEvents, the `autotagreplay` attribute), which the function echoes as `replayOf` in its
summary and log. Tagging is idempotent, so replaying twice writes nothing new.

Only letters the functions' own failures leave are re-driven (letters.py: anyone allowed to send to the
queue can write one); the rest are refused, naming why, and kept. A replay is done only when the function's
result says so for every record (`not_done`): a record OSS refused (a bucket since deleted: `rejected`,
OSS's code in the reason) or a batch element it refused keeps the letter in the store, with that as its new
reason beside its earlier ones (the first among them), and the command ends in one `Error:` line naming
each letter not replayed, its bucket and OSS's code (exit 1). Each letter is printed one fact a line, never
in a table's folded cell, so what an operator copies (ids, `bucket/key`, codes) is whole at any width."""

from __future__ import annotations

import json
from pathlib import Path

import click

from autotag.output import to_json
from cloudformats.letter_replay import NOT_DONE, not_done, with_provenance
from cloudformats.letter_replay import subject as _subject
from localcloud.fc import DeadLetter, DeadLetterError, DeadLetterStore, read_dead_letters

from .console import shown
from .errors import BadInput, CliError, command_line, describe, doing, resumable
from .function_host import (
    DEFAULT_DEAD_LETTERS,
    environment_options,
    host_functions,
    read_template,
    template_option,
)
from .letters import refusal
from .target import Target, require_reachable, target_options


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
    help="A JSON-lines export of the on-failure queue's messages instead (left as it is). Default: --store.",
)
@click.option("--dry-run", is_flag=True, help="List what would be replayed; invoke nothing.")
@click.option(
    "--remote",
    is_flag=True,
    help="Invoke the deployed functions through the FC API at --fc-endpoint instead of running them here.",
)
@template_option
@environment_options
@target_options(oss=True, fc=True)
@click.option("--json", "as_json", is_flag=True, help="Print each dead letter and what became of it as JSON.")
def replay(
    store: Path,
    export: Path | None,
    dry_run: bool,
    remote: bool,
    template_path: Path,
    rules: str | None,
    env_vars: Path | None,
    target: Target,
    as_json: bool,
) -> None:
    """Re-drive dead-lettered events through their function, idempotently.

    \b
    Examples:
      autotag replay --dry-run
      autotag replay --file mns-export.jsonl
    """
    try:
        letters = read_dead_letters(export) if export else DeadLetterStore(store).all()
    except DeadLetterError as error:
        raise BadInput(str(error)) from None
    template = read_template(template_path)
    source = export or store
    rows: list[dict[str, object]] = []
    if not letters:
        if as_json:
            click.echo(json.dumps({"source": str(source), "letters": rows, "replayed": 0, "failed": 0}))
        else:
            click.echo(f"no dead letters in {source}")
        return
    replayed: set[str] = set()
    outcomes: dict[str, str] = {}  # each letter's replay, by id
    renewed: dict[str, tuple[str, str]] = {}  # letters whose replay failed: their new reason
    failed = 0
    if not dry_run:
        resumable(f"Run `{command_line()}` again: replaying again is idempotent.")
    if not dry_run and not remote:
        require_reachable(target.oss_endpoint, "OSS")
    fc = host_functions(template, target, rules=rules, env_vars=env_vars)
    client = target.fc_client() if remote and not dry_run else None
    if client is not None:
        import fc2
    with fc:
        for letter in letters:
            outcome = "would replay"
            spec = template.functions.get(letter.function)
            if spec is None:
                outcome, failed = f"no function {letter.function!r} in the template", failed + 1
            elif letter.service and letter.service != spec.service:  # FC names functions by service too
                where = f"in service {letter.service!r} of the template"
                outcome, failed = f"no function {letter.function!r} {where}", failed + 1
            elif refusal(letter, spec):  # anyone may send to the queue: only the functions' own failures
                outcome, failed = f"refused: {refusal(letter, spec)}", failed + 1
            elif client is not None:
                doing(f"replaying {letter.request_id} through FC at {target.fc_endpoint}")
                try:
                    response = client.invoke_function(
                        spec.service, spec.name, payload=with_provenance(letter)
                    )
                except fc2.fc_exceptions.FcError as error:
                    if error.status_code != 200:  # FC refused the call itself: no use trying the others
                        raise
                    outcome, failed = f"failed again: {describe(error, {})}", failed + 1
                    renewed[letter.id] = ("UnhandledInvocationError", describe(error, {}))
                else:
                    data = response.data
                    left = not_done(data.decode("utf-8", "replace") if isinstance(data, bytes) else data)
                    outcome = _settle(response.headers.get("x-fc-request-id", ""), left)
                    if left:
                        failed += 1
                        renewed[letter.id] = (NOT_DONE, "; ".join(left))
                    else:
                        replayed.add(letter.id)
            elif not dry_run:
                result = fc.invoke(letter.function, with_provenance(letter), service=spec.service)
                if result.ok:
                    left = not_done(result.payload)
                    outcome = _settle(result.request_id, left)
                    if left:
                        failed += 1
                        renewed[letter.id] = (NOT_DONE, "; ".join(left))
                    else:
                        replayed.add(letter.id)
                else:
                    outcome, failed = f"failed again: {result.error_message}", failed + 1
                    renewed[letter.id] = (result.error_type, result.error_message)
            outcomes[letter.id] = outcome
            rows.append(
                {
                    "id": letter.id,
                    "function": letter.function,
                    "objects": _subject(letter),
                    "requestId": letter.request_id,
                    "attempts": letter.attempts,
                    "error": letter.error_message,
                    "firstError": letter.first_error[1],
                    "replay": outcome,
                }
            )
    if replayed and not export:
        DeadLetterStore(store).remove(replayed)
    if renewed and not export:  # the letter stays, with why its replay failed
        DeadLetterStore(store).renew(renewed)
    if as_json:
        counts = {"replayed": len(replayed), "failed": failed}
        click.echo(to_json({"source": str(source), "letters": rows, **counts}))
    else:
        click.echo(shown(f"dead letters from {source}" + (" (dry run)" if dry_run else "")))
        for letter in letters:
            click.echo(_block(letter, outcomes[letter.id]))
        click.echo(f"{len(letters)} dead letters, {len(replayed)} replayed, {failed} failed")
    if failed:
        raise CliError(_not_replayed(letters, outcomes, replayed, source, kept=not export))


def _block(letter: DeadLetter, outcome: str) -> str:
    """A letter, one fact a line and each whole (never folded as a table's cell is at 80 columns): its
    id, request id, objects, bucket names and OSS's codes are what an operator copies into the next
    command (`autotag logs --request-id`, `autotag plan --bucket`)."""
    lines = [
        f"letter {letter.id}: {letter.function}, request {letter.request_id}, {letter.attempts} attempts",
        f"  objects: {_subject(letter)}",
        f"  error: {letter.error_type}: {letter.error_message}",
    ]
    if letter.first_error != (letter.error_type, letter.error_message):
        lines.append(f"  first error: {letter.first_error[0]}: {letter.first_error[1]}")
    lines.append(f"  replay: {outcome}")
    return "\n".join(shown(line) for line in lines)


def _not_replayed(
    letters: list[DeadLetter], outcomes: dict[str, str], replayed: set[str], source: Path, kept: bool
) -> str:
    """The command's one error line: how many letters were not replayed, where they stay, and why each
    (the function's own words, which name the bucket and OSS's code), the first three of them."""
    left = [one for one in letters if one.id not in replayed and outcomes[one.id] != "would replay"]
    why = [f"letter {letter.id}: {outcomes[letter.id]}" for letter in left[:3]]
    more = f"; {len(left) - 3} more above" if len(left) > 3 else ""
    where = f"kept in {source} with why" if kept else f"left in {source}"
    return f"{len(left)} of {len(letters)} dead letters not replayed ({where}): {'; '.join(why)}{more}"


def _settle(request_id: str, left: list[str]) -> str:
    """The replay column: done, or what the function's result says was not."""
    if not left:
        return f"replayed ({request_id})"
    return f"not done ({request_id}): " + "; ".join(left)
