"""`autotag local ...`: run the local cloud in the foreground."""

from __future__ import annotations

import errno
import logging
import os
import signal
from collections import Counter
from pathlib import Path

import click

from autotag.ownership import record_secrets
from autotag.rules.remote import parse_location
from autotag.settings import DEFAULT_STATE_PREFIX
from cloudformats.items import MAX_INFLATED_BYTES
from deployer.flows import FlowRefused, cloudflow_client, flow_actions
from localcloud.clock import Clock, DurationError, format_duration, parse_duration
from localcloud.cloudflow import LocalCloudFlow
from localcloud.fc import DeadLetterStore, FunctionSpec, LocalFC, Template, role_credentials
from localcloud.fc.api import LocalFcApi
from localcloud.fc.eventbridge import EVENT_STREAMING, pattern_buckets
from localcloud.oss import DEFAULT_CREDENTIALS, Credential, LocalOSS
from webconsole import Console, ConsoleConfig
from webconsole.functions import FunctionInfo, TriggerInfo

from .errors import VERBOSE, BadInput
from .function_host import (
    DEFAULT_DEAD_LETTERS,
    LOCAL_STATE,
    environment_options,
    host_functions,
    read_template,
    template_option,
)
from .invocation_file import FunctionLog, InvocationLogWriter, invocation_log_of, remove_stale_logs
from .local_cloud_file import (
    LocalCloud,
    LocalCloudFileError,
    remove_local_cloud_file,
    running_local_clouds,
    write_local_cloud_file,
)
from .local_flows_log import FlowsLog
from .local_inventory import local_inventory
from .local_log import BelowLevel, LocalUpLog
from .options import rules_from
from .target import LOCAL_ACCOUNT_ID, Credentials, Target

INFLATE_BOUND_VARIABLE = "AUTOTAG_LOCAL_CLOUDFLOW_MAX_INFLATED_BYTES"


def _verbose() -> bool:
    """Whether `autotag -v` (or --debug) asked for what is otherwise left out."""
    return bool(click.get_current_context().meta.get(VERBOSE))


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def watched_buckets(template: Template) -> set[str]:
    """The buckets whose events the template's triggers take: an OSS trigger's, and those an enabled
    EventBridge trigger's pattern names, or for a queue-fed trigger the enabled rule routing OSS events
    to the queue (template.yml names autotag-demo in the subject prefix)."""
    buckets: set[str] = set()
    for trigger in (t for spec in template.functions.values() for t in spec.triggers):
        if trigger.type == "OSS":
            buckets.add(trigger.bucket)
        elif trigger.type == "EventBridge" and trigger.eventbridge.enabled:
            buckets |= pattern_buckets(trigger.eventbridge.pattern)
    for route in template.routes:
        if route.enabled:
            buckets |= pattern_buckets(route.pattern)
    return buckets


def triggers_by_kind(template: Template) -> str:
    """How many triggers of each kind deliver OSS events: "1 OSS trigger, 1 EventBridge trigger
    (batched)". A disabled EventBridge trigger delivers nothing and is not counted."""
    kinds: Counter[tuple[str, str]] = Counter()
    for trigger in (t for spec in template.functions.values() for t in spec.triggers):
        if trigger.type == "OSS":
            kinds["OSS trigger", ""] += 1
        elif trigger.type == "EventBridge" and trigger.eventbridge.enabled:
            batched = trigger.eventbridge.mode == EVENT_STREAMING
            kinds["EventBridge trigger", " (batched)" if batched else " (event-driven)"] += 1
    counted = [f"{n} {noun}{'' if n == 1 else 's'}{how}" for (noun, how), n in kinds.items()]
    return ", ".join(counted) or "no OSS or EventBridge trigger"


def _credential(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[Credential]:
    try:
        return [Credential.parse(v) for v in values] or list(DEFAULT_CREDENTIALS)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _clock(_ctx: click.Context, _param: click.Parameter, value: str) -> Clock:
    try:
        return Clock(parse_duration(value))
    except DurationError as exc:
        raise click.BadParameter(str(exc)) from None


def _shift(clock: Clock) -> str:
    return f"; clock {format_duration(clock.offset)} from real time" if clock.offset else ""


clock_offset = click.option(
    "--clock-offset",
    "clock",
    default="0",
    show_default=True,
    callback=_clock,
    metavar="DURATION",
    help="Run the local cloud's clock this far from the real one (8d, -1h, 1h30m): the Date OSS answers "
    "with, new objects' Last-Modified and timer trigger times. Signatures still use the real clock.",
)


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
@click.option("--region", default="cn-hangzhou", show_default=True, help="The region the local OSS plays.")
@click.option(
    "--open-admin",
    is_flag=True,
    help="Serve the admin API (/_admin/: faults, subscriptions) without a token, to any local process.",
)
@clock_offset
def local_oss(
    host: str,
    port: int,
    credentials: list[Credential],
    data_dir: Path | None,
    region: str,
    open_admin: bool,
    clock: Clock,
) -> None:
    """Serve an OSS-compatible endpoint in the foreground until interrupted."""
    try:
        server = LocalOSS(
            host=host,
            port=port,
            credentials=credentials,
            data_dir=data_dir,
            region=region,
            admin_token=None if open_admin else "",
            clock=clock,
        )
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    keys = ", ".join(c.access_key_id for c in credentials)
    admin = f"admin token: {server.admin_token}" if server.admin_token else "admin API open"
    click.echo(
        f"local OSS ready at {server.endpoint} (region {region}, access keys: {keys}, {admin}{_shift(clock)})"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@local.command("up")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--oss-port",
    default=9000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Local OSS port (0: any).",
)
@click.option(
    "--fc-port",
    default=9001,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Local FC API port (0: any).",
)
@click.option(
    "--cloudflow-port",
    default=9002,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Local CloudFlow port (0: any).",
)
@click.option(
    "--console-port",
    default=None,
    type=click.IntRange(0, 65535),
    help="The console's port, on 127.0.0.1 only (0: any). Default: 9003, or any when --oss-port is 0.",
)
@template_option
@click.option(
    "--dead-letters",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DEAD_LETTERS,
    show_default=True,
    help="The on-failure destination: failed asynchronous invocations, as JSON lines.",
)
@click.option(
    "--concurrency", default=4, show_default=True, type=click.IntRange(1, 64), help="FC instances at once."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep OSS state in this folder across restarts. Default: memory only.",
)
@click.option("--region", default="cn-hangzhou", show_default=True, help="The region the local cloud plays.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="warning",
    show_default=True,
    help="Level of the functions' own log lines (info: one JSON line per object).",
)
@environment_options
@clock_offset
def local_up(
    host: str,
    oss_port: int,
    fc_port: int,
    cloudflow_port: int,
    console_port: int | None,
    template_path: Path,
    dead_letters: Path,
    concurrency: int,
    data_dir: Path | None,
    region: str,
    log_level: str,
    rules: str | None,
    env_vars: Path | None,
    clock: Clock,
) -> None:
    """The whole local cloud in the foreground: the local OSS, a local FC running template.yml's
    functions under their roles, with their OSS and timer triggers wired and the FC API in front, and a
    local CloudFlow with template.yml's flows, run as their roles, and the console for a browser
    (docs/console.md), whose one-time login link it prints. Prints a line per invocation, retry and dead
    letter.

    \b
    Example:
      autotag local up   # OSS on :9000, FC API :9001, CloudFlow :9002, console :9003; Ctrl-C stops it
    """
    template = read_template(template_path)
    inflate_bound = _inflate_bound()
    others = _others_here(dead_letters)
    # before anything listens; rules in OSS are read by the functions from the local OSS once it is up
    # (usually pushed there after it starts)
    rules_in_oss = bool(rules) and parse_location(rules or "") is not None
    if rules and not rules_in_oss:
        rules_from(rules, functions_read=True)
    try:
        oss = LocalOSS(host=host, port=oss_port, data_dir=data_dir, region=region, clock=clock)
    except OSError as exc:
        taken = _taken(host, oss_port, exc, "--oss-port", "AUTOTAG_OSS_ENDPOINT")
        raise click.ClickException(taken) from None
    # what the triggers watch, and the buckets the template declares (the sweep's state), exist from the start
    buckets = watched_buckets(template) | {declared.name for declared in template.buckets}
    for name in sorted(buckets):
        oss.store.create_bucket(name)
    default = DEFAULT_CREDENTIALS[0]
    own = Credentials(default.access_key_id, default.access_key_secret, "", "local cloud defaults")
    target = Target(oss.endpoint, "", region, LOCAL_ACCOUNT_ID, own)
    fc = host_functions(
        template,
        target,
        rules=rules,
        check_rules=not rules_in_oss,
        env_vars=env_vars,
        dead_letters=DeadLetterStore(dead_letters),
        concurrency=concurrency,
        region=region,
        clock=clock,  # one clock: timers fire at the local OSS's time
    )
    try:
        api = LocalFcApi(fc, host=host, port=fc_port, region=region)
    except OSError as exc:
        oss.stop()
        raise click.ClickException(_taken(host, fc_port, exc, "--fc-port", "AUTOTAG_FC_ENDPOINT")) from None
    fc.environment["AUTOTAG_FC_ENDPOINT"] = api.endpoint  # the sweep's shards go through the FC API
    # The flows run as their own roles: the local OSS and FC API take those roles' keys and enforce their
    # policies, as for the functions' roles.
    flow_keys = role_credentials(template.flow_roles.values())
    oss.add_credentials(list(flow_keys))
    api.add_credentials(flow_keys)
    try:
        cloudflow = LocalCloudFlow(
            oss.endpoint,
            api.endpoint,
            roles=template.flow_roles,
            data_dir=data_dir,
            region=region,
            host=host,
            port=cloudflow_port,
            max_threads=concurrency,
            max_inflated_bytes=inflate_bound,
        )
    except OSError as exc:
        oss.stop()
        api.stop()
        raise click.ClickException(
            _taken(host, cloudflow_port, exc, "--cloudflow-port", "AUTOTAG_CLOUDFLOW_ENDPOINT")
        ) from None
    shown = min(logging.getLevelName(log_level.upper()), logging.INFO if _verbose() else logging.CRITICAL)
    # the functions log at INFO, as FC keeps it, for the invocation log; the console shows --log-level's
    logging.getLogger("autotag").setLevel(min(shown, logging.INFO))
    for handler in logging.getLogger().handlers:
        handler.addFilter(BelowLevel(shown))
    function_log = FunctionLog()
    logging.getLogger().addHandler(function_log)
    state_prefix = fc.environment.get("AUTOTAG_STATE_PREFIX", DEFAULT_STATE_PREFIX)
    printed = LocalUpLog(state_prefix, _verbose())
    fc.observers.append(printed)
    remove_stale_logs({cloud.pid for cloud in others} | {os.getpid()})
    invocation_log = invocation_log_of(os.getpid())  # this instance's own: others here keep theirs
    fc.observers.append(InvocationLogWriter(invocation_log, function_log, state_prefix))
    executions = FlowsLog(lambda: [dict(r) for r in list(cloudflow.service.executions.values())])
    # who asks for any OSS port (tests, tools) gets any console port too: instances never collide
    port = console_port if console_port is not None else 0 if oss_port == 0 else 9003
    try:
        console = _console(
            template,
            fc,
            oss.endpoint,
            api.endpoint,
            region,
            invocation_log,
            state_prefix,
            port,
            # what the console reads and writes besides the APIs: this instance's own files
            dead_letters=dead_letters.resolve(),
            oss_admin_token=oss.admin_token or "",
            data_dir=(LOCAL_STATE / f"console-{os.getpid()}").resolve(),
            cloudflow_endpoint=cloudflow.endpoint,
        )
    except OSError as exc:
        oss.stop()
        api.stop()
        cloudflow.stop()
        raise click.ClickException(
            f"the console cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}: start it on another port "
            "with --console-port (0 picks a free one)"
        ) from None
    with fc, api, printed, cloudflow, executions, console:
        fc.wire_oss(oss)
        flows = cloudflow_client(
            f"http://{cloudflow.endpoint}", region, default.access_key_id, default.access_key_secret
        )
        try:
            for action in flow_actions(flows, template, LOCAL_ACCOUNT_ID):  # as `autotag deploy` would
                if action.apply is not None:
                    action.apply()
        except FlowRefused as error:
            oss.stop()
            raise click.ClickException(f"{template_path}: {error}") from None
        try:  # before the banner: once it is printed, `autotag local inventory` finds this instance
            write_local_cloud_file(
                oss.endpoint,
                api.endpoint,
                oss.admin_token or "",
                invocation_log=invocation_log.name,
                dead_letters=str(dead_letters.resolve()),
            )
        except LocalCloudFileError as error:
            oss.stop()
            raise click.ClickException(str(error)) from None
        try:
            timers = [t.name for f in template.functions.values() for t in f.triggers if t.type == "Timer"]
            click.echo(
                f"local OSS ready at {oss.endpoint} (region {region}; buckets: {', '.join(sorted(buckets))}; "
                f"admin token: {oss.admin_token}{_shift(clock)})"
            )
            click.echo(
                f"local FC running {', '.join(template.functions)} from {template_path} under their "
                f"template roles: {triggers_by_kind(template)}, timers {', '.join(timers) or 'none'}; "
                f"dead letters in {dead_letters}" + (f"; rules {rules}" if rules else "")
            )
            click.echo(f"local FC API ready at {api.endpoint} (aliyun-fc2 endpoint, version 2016-08-15)")
            click.echo(
                f"local CloudFlow ready at http://{cloudflow.endpoint} (alibabacloud-fnf20190315 endpoint, "
                f"version 2019-03-15; flows: {', '.join(f.name for f in template.flows) or 'none'})"
            )
            click.echo(
                f"console ready at {console.address} (127.0.0.1 only); sign in once at {console.login_link}"
            )
            # SIGTERM (a service manager, `kill`) ends it as Ctrl-C does: the admin token's file goes too
            signal.signal(signal.SIGTERM, _interrupt)
            oss.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            remove_local_cloud_file()  # this instance's file only: others in this folder keep theirs
            oss.stop()


local.add_command(local_inventory)


def _inflate_bound() -> int:
    """The local CloudFlow's bound on what one inventory data file may inflate to: 1 GiB, or the bytes
    AUTOTAG_LOCAL_CLOUDFLOW_MAX_INFLATED_BYTES gives (tests lower it rather than inflate gigabytes)."""
    text = os.environ.get(INFLATE_BOUND_VARIABLE, "").strip()
    if not text:
        return MAX_INFLATED_BYTES
    if not text.isdigit() or int(text) < 1:
        raise BadInput(f"{INFLATE_BOUND_VARIABLE}={text[:40]!r} is not a number of bytes (1 or more)")
    return int(text)


def _console(
    template: Template,
    fc: LocalFC,
    oss_endpoint: str,
    fc_endpoint: str,
    region: str,
    invocation_log: Path,
    state_prefix: str,
    port: int,
    *,
    dead_letters: Path,
    oss_admin_token: str,
    data_dir: Path,
    cloudflow_endpoint: str,
) -> Console:
    """The console over this local cloud, pointed at its endpoints and at the upload function's rules and
    record secrets (as the function runs with them), not yet started."""
    upload = next((s for s in template.functions.values() if s.handler == "tag_on_upload.handler"), None)
    environment = fc.environment  # one environment for every function: the local FC runs them in one process
    default = DEFAULT_CREDENTIALS[0]
    config = ConsoleConfig(
        oss_endpoint=oss_endpoint,
        fc_endpoint=fc_endpoint,
        region=region,
        access_key_id=default.access_key_id,
        access_key_secret=default.access_key_secret,
        upload_service=upload.service if upload else "",
        upload_function=upload.name if upload else "",
        invocation_log=invocation_log,
        rules_location=environment.get("AUTOTAG_RULES", ""),
        record_secrets=record_secrets(environment.get("AUTOTAG_RECORD_SECRET", "")),
        state_prefix=state_prefix,
        functions=tuple(template.functions),
        function_infos=tuple(_function_info(spec) for spec in template.functions.values()),
        dead_letters=dead_letters,
        oss_admin_token=oss_admin_token,
        data_dir=data_dir,
        cloudflow_endpoint=cloudflow_endpoint,
        flows=tuple(flow.name for flow in template.flows),
    )
    return Console(config, port=port)


def _function_info(spec: FunctionSpec) -> FunctionInfo:
    """A function of the template as the console shows it: its triggers' settings in one line each."""
    triggers = []
    for trigger in spec.triggers:
        if trigger.type == "OSS":
            prefix, suffix = trigger.key_filter
            where = f" prefix {prefix!r}" if prefix else ""
            where += f" suffix {suffix!r}" if suffix else ""
            summary = f"oss://{trigger.bucket} {', '.join(trigger.events)}{where}"
        elif trigger.type == "Timer":
            summary = f"{trigger.cron} payload {trigger.payload}" + ("" if trigger.enabled else " (disabled)")
        elif trigger.type == "EventBridge":
            config = trigger.eventbridge
            summary = f"{config.mode}" + ("" if config.enabled else " (disabled)")
        else:
            summary = trigger.type
        bucket = trigger.bucket if trigger.type == "OSS" else ""
        triggers.append(TriggerInfo(trigger.name, trigger.type, summary, trigger.payload, bucket))
    return FunctionInfo(spec.name, spec.service, spec.handler, spec.role, spec.description, tuple(triggers))


def _others_here(dead_letters: Path) -> list[LocalCloud]:
    """The other local clouds running in this folder; a bad-input error when one of them keeps its dead
    letters in `dead_letters`: `autotag replay` of that file would re-drive the other cloud's letters."""
    try:
        others = running_local_clouds()
    except LocalCloudFileError as error:
        raise click.ClickException(str(error)) from None
    mine = str(dead_letters.resolve())
    for other in others:
        if other.dead_letters == mine:
            raise BadInput(
                f"the local cloud of this folder at {other.fc_endpoint} (pid {other.pid}) keeps its dead "
                f"letters in {dead_letters}: give this one a file of its own with --dead-letters FILE"
            )
    return others


def _taken(host: str, port: int, error: OSError, option: str, variable: str) -> str:
    """Why local up cannot start on a port, and, when something holds it (another local cloud, often),
    what to do: another port, and how the other commands then point at this cloud."""
    said = f"cannot listen on {host}:{port}: {error.strerror or error}"
    if error.errno != errno.EADDRINUSE:
        return said
    return (
        f"{said}: start on another with {option} (0 picks a free one), then point the commands at it "
        f"with {variable}=http://{host}:<port> or --{variable.split('_')[1].lower()}-endpoint"
    )
