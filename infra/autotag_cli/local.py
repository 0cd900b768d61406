"""`autotag local ...`: run the local cloud in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from localcloud.oss import DEFAULT_CREDENTIALS, Credential, LocalOSS


def _credential(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[Credential]:
    try:
        return [Credential.parse(v) for v in values] or list(DEFAULT_CREDENTIALS)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.group()
def local() -> None:
    """Run the local cloud."""


@local.command("oss")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=9000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--credential",
    "credentials",
    multiple=True,
    callback=_credential,
    metavar="AK:SK[:STS_TOKEN]",
    help="Accepted credential (repeatable); a third part makes it STS, requiring that token. "
    "Default: local-access-key:local-secret-key and "
    "STS.local-sts-key:local-sts-secret:local-sts-token.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep state in this folder across restarts (default: memory only).",
)
@click.option("--region", default="cn-hangzhou", show_default=True)
def local_oss(
    host: str, port: int, credentials: list[Credential], data_dir: Path | None, region: str
) -> None:
    """Serve an OSS-compatible endpoint in the foreground until interrupted."""
    try:
        server = LocalOSS(host=host, port=port, credentials=credentials, data_dir=data_dir, region=region)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    keys = ", ".join(c.access_key_id for c in credentials)
    click.echo(f"local OSS ready at {server.endpoint} (region {region}, access keys: {keys})", err=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
