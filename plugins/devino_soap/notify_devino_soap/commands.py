"""Commands the Devino plugin adds to ``notify-devino``: ``sandbox``, ``demo`` and ``estimate``."""

from __future__ import annotations

import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from notify_devino.cliapi import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliState,
    emit_json,
    fail,
    get_state,
    guard,
    read_text,
    warn,
)

PACKAGE_CONFIG = Path(__file__).parent / "config"
DEFAULT_SANDBOX_CONFIG = PACKAGE_CONFIG / "sandbox.yaml"
DEMO_CONFIG = PACKAGE_CONFIG / "demo.yaml"

# The commands import aiohttp, the emulator and the dispatcher in their bodies: loading them
# (every ``notify-devino`` start, ``--help`` too) costs only click.


def _sandbox_config_option(command: Any) -> Any:
    command = click.option(
        "--config",
        "old_config",
        type=click.Path(dir_okay=False),
        hidden=True,
        help="Deprecated spelling of --sandbox-config.",
    )(command)
    return click.option(
        "--sandbox-config",
        type=click.Path(dir_okay=False),
        help="Sandbox YAML (accounts, prices, failing numbers, timings). "
        "Default: the packaged config/sandbox.yaml.",
    )(command)


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8085,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@_sandbox_config_option
@click.pass_context
def sandbox(
    ctx: click.Context,
    host: str,
    port: int,
    sandbox_config: str | None,
    old_config: str | None,
) -> None:
    """Run the Devino sandbox: a faithful emulator of Devino's SmsService SOAP API.

    Without a subcommand it serves until interrupted (Ctrl-C), after printing where it
    listens; 'sandbox inject' adds an inbound message to a running sandbox.
    """
    if ctx.invoked_subcommand is not None:
        return
    import asyncio

    from .emulator import load_sandbox_config, run_sandbox

    if old_config is not None:
        warn("sandbox --config is deprecated and will go: use --sandbox-config")
    get_state(ctx).setup_logging()
    config = guard(
        lambda: load_sandbox_config(sandbox_config or old_config or DEFAULT_SANDBOX_CONFIG)
    )

    def ready(box: Any) -> None:
        click.echo(f"Devino sandbox listening on {box.url} (WSDL at {box.url}?WSDL); Ctrl-C stops")
        sys.stdout.flush()

    try:
        asyncio.run(run_sandbox(config, host=host, port=port, on_ready=ready))
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: a normal end
        click.echo("sandbox stopped", err=True)
        sys.exit(EXIT_OK)
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}", EXIT_FAILED)


_PHONE = re.compile(r"\+?[0-9][0-9 ()\-]{2,20}")


def _phone(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _PHONE.fullmatch(value.strip()) or sum(c.isdigit() for c in value) < 3:
        raise click.BadParameter(
            f"{value!r} is not a phone number: give the sender's number, such as 79031234567",
            ctx=ctx,
            param=param,
        )
    return value.strip()


@sandbox.command("inject")
@click.argument("text")
@click.option("--from", "source", required=True, callback=_phone, help="The sender's phone number.")
@click.option(
    "--to",
    "destination",
    required=True,
    help="The recipient: the account's inbound number or sender name (ALERTS).",
)
@click.option(
    "--url",
    default="http://127.0.0.1:8085",
    show_default=True,
    help="The running sandbox's base URL.",
)
def inject(text: str, source: str, destination: str, url: str) -> None:
    """Inject an inbound message (a reply to an alert) into a running sandbox."""
    import asyncio
    import json

    import aiohttp

    text = read_text(text)
    if not destination.strip():
        raise click.BadParameter("the recipient is empty", param_hint="--to")
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--url")

    async def post() -> dict[str, object]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url.rstrip("/") + "/admin/incoming",
                json={"source": source, "destination": destination.strip(), "text": text},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response,
        ):
            body = await response.text()
            if response.status == 400:
                fail(f"the sandbox refused the message: {body}", EXIT_USAGE)
            if response.status != 201:
                fail(f"the sandbox answered {response.status}: {body}", EXIT_FAILED)
            return json.loads(body)  # type: ignore[no-any-return]

    try:
        stored = asyncio.run(post())
    except (aiohttp.ClientError, TimeoutError) as exc:
        fail(f"cannot reach the sandbox at {url}: {exc or type(exc).__name__}", EXIT_FAILED)
    click.echo(json.dumps(stored, ensure_ascii=False))


@click.command()
@click.option(
    "--sandbox-config",
    type=click.Path(dir_okay=False, exists=True),
    help="Sandbox YAML. Default: the packaged config/sandbox.yaml.",
)
@click.option(
    "--config",
    "demo_config",
    type=click.Path(dir_okay=False, exists=True),
    hidden=True,
    help="Deprecated: give the dispatcher YAML with notify-devino --config.",
)
@click.pass_context
def demo(ctx: click.Context, sandbox_config: str | None, demo_config: str | None) -> None:
    """Run the whole product on the embedded Devino sandbox: send, follow, read replies.

    Starts the sandbox in this process on a free loopback port, then sends a Latin SMS, a long
    Cyrillic one, a bulk send with a failing number and a time-zone send; follows every message
    to its final state; injects and reads a reply; shows balance and statistics.

    The dispatcher's configuration is the packaged demo one, or the file given with
    'notify-devino --config PATH demo' (its ${DEVINO_SANDBOX_URL} is the sandbox's URL);
    $NOTIFY_DEVINO_CONFIG is not used, so the demo never sends through your real account.
    """
    import asyncio

    from .demo import run_demo

    state = get_state(ctx)
    if demo_config is not None:
        warn("demo --config is deprecated and will go: use notify-devino --config PATH demo")
    chosen = demo_config or (state.config_path if state.config_from_command_line else None)
    path = Path(chosen) if chosen else DEMO_CONFIG
    if not path.is_file():
        raise click.BadParameter(f"{str(path)!r} is not a readable file", param_hint="--config")
    state.setup_logging()
    code = guard(
        lambda: asyncio.run(
            run_demo(
                state.plugins,
                sandbox_config=Path(sandbox_config) if sandbox_config else DEFAULT_SANDBOX_CONFIG,
                demo_config=path,
            )
        )
    )
    sys.exit(code)


def _price(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not a number", param_hint="--price") from None
    if not price.is_finite() or price < 0:
        raise click.BadParameter("the price must be a number >= 0", param_hint="--price")
    return price


def _configured_price(state: CliState, channel: str | None) -> tuple[Decimal | None, str | None]:
    """``price_per_segment`` and ``currency`` of a Devino channel of the configuration; nothing
    when no configuration file is found (an estimate needs none)."""
    from notify_devino.config import find_config
    from notify_devino.errors import ConfigError

    from .hooks import CHANNEL_TYPE
    from .settings import DevinoSettings

    try:
        find_config(state.config_path)
    except ConfigError:
        if channel is not None:
            raise
        return None, None
    config = state.load_config()
    name = channel or config.default_channel
    if name is None:
        raise ConfigError("several channels are configured and none is the default: --channel")
    if name not in config.channels:
        raise ConfigError(f"no channel named {name!r}; configured: {', '.join(config.channels)}")
    if config.channels[name].type != CHANNEL_TYPE:
        raise ConfigError(f"channel {name!r} is not a Devino channel ({CHANNEL_TYPE})")
    settings = config.channel_settings(name, DevinoSettings)
    return settings.price_per_segment, settings.currency


@click.command()
@click.argument("text", required=False)
@click.option(
    "--price",
    metavar="AMOUNT",
    help="Price of one segment. Default: the channel's price_per_segment setting.",
)
@click.option(
    "--recipients",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many numbers the cost is for.",
)
@click.option("--channel", help="Configured channel whose price to use (default: the default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def estimate(
    ctx: click.Context,
    text: str | None,
    price: str | None,
    recipients: int,
    channel: str | None,
    as_json: bool,
) -> None:
    """Show how TEXT travels as SMS: encoding, parts, room left in the last part, and cost.

    TEXT absent or '-' reads standard input. Nothing is sent and no network is used. A warning
    names every character that forces UCS-2 (70 characters per SMS instead of 160) and says
    how many parts the text would take without them.
    """
    from notify_devino.errors import ConfigError

    from .estimate import estimate as make_estimate

    text = read_text(text, allow_blank=True)
    per_segment, currency = _price(price), None
    state = get_state(ctx)
    try:
        if per_segment is None:
            per_segment, currency = _configured_price(state, channel)
        elif channel is not None:
            currency = _configured_price(state, channel)[1]
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    result = make_estimate(
        text, recipients=recipients, price_per_segment=per_segment, currency=currency
    )
    if as_json:
        emit_json(result.to_json())
    else:
        click.echo(result.render())
