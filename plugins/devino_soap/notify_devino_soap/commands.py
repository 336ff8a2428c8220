"""Commands the Devino plugin adds to ``notify-devino``: ``sandbox``, ``demo`` and ``estimate``."""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import aiohttp
import click

from notify_devino.cli import EXIT_FAILED, EXIT_USAGE, CliState, emit_json, fail, setup_logging
from notify_devino.config import find_config
from notify_devino.errors import ConfigError, NotifyError

from .emulator.config import load_sandbox_config
from .emulator.server import run_sandbox

PACKAGE_CONFIG = Path(__file__).parent / "config"
DEFAULT_SANDBOX_CONFIG = PACKAGE_CONFIG / "sandbox.yaml"
DEMO_CONFIG = PACKAGE_CONFIG / "demo.yaml"


@click.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8085,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--config",
    "sandbox_config",
    type=click.Path(dir_okay=False),
    help="Sandbox YAML (accounts, prices, failing numbers, timings). "
    "Default: the packaged config/sandbox.yaml.",
)
@click.pass_context
def sandbox(ctx: click.Context, host: str, port: int, sandbox_config: str | None) -> None:
    """Run the Devino sandbox: a faithful emulator of Devino's SmsService SOAP API.

    Without a subcommand it serves until interrupted; 'sandbox inject' adds an inbound message
    to a running sandbox.
    """
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(CliState)
    if state is not None:
        setup_logging(state)
    try:
        config = load_sandbox_config(sandbox_config or DEFAULT_SANDBOX_CONFIG)
    except NotifyError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        asyncio.run(run_sandbox(config, host=host, port=port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}", EXIT_FAILED)


@sandbox.command("inject")
@click.argument("text")
@click.option("--from", "source", required=True, help="The sender's number.")
@click.option("--to", "destination", required=True, help="The account's inbound number.")
@click.option(
    "--url",
    default="http://127.0.0.1:8085",
    show_default=True,
    help="The running sandbox's base URL.",
)
def inject(text: str, source: str, destination: str, url: str) -> None:
    """Inject an inbound message (a reply to an alert) into a running sandbox."""

    async def post() -> dict[str, object]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url.rstrip("/") + "/admin/incoming",
                json={"source": source, "destination": destination, "text": text},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response,
        ):
            body = await response.text()
            if response.status != 201:
                fail(f"the sandbox answered {response.status}: {body}", EXIT_FAILED)
            return json.loads(body)  # type: ignore[no-any-return]

    try:
        stored = asyncio.run(post())
    except aiohttp.ClientError as exc:
        fail(f"cannot reach the sandbox at {url}: {exc}", EXIT_FAILED)
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
    help="Dispatcher YAML. Default: the packaged config/demo.yaml.",
)
@click.pass_context
def demo(ctx: click.Context, sandbox_config: str | None, demo_config: str | None) -> None:
    """Run the whole product on the embedded Devino sandbox: send, follow, read replies.

    Starts the sandbox in this process on a free loopback port, then sends a Latin SMS, a long
    Cyrillic one, a bulk send with a failing number and a time-zone send; follows every message
    to its final state; injects and reads a reply; shows balance and statistics.
    """
    from .demo import run_demo

    state = ctx.find_object(CliState)
    assert state is not None
    setup_logging(state)
    try:
        code = asyncio.run(
            run_demo(
                state.plugins,
                sandbox_config=Path(sandbox_config) if sandbox_config else DEFAULT_SANDBOX_CONFIG,
                demo_config=Path(demo_config) if demo_config else DEMO_CONFIG,
            )
        )
    except NotifyError as exc:
        fail(f"{exc} ({type(exc).__name__})", EXIT_FAILED)
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
    from .estimate import estimate as make_estimate

    if text is None or text == "-":
        if sys.stdin.isatty():
            raise click.UsageError("give the text as an argument or on standard input")
        text = sys.stdin.read().rstrip("\n")
    per_segment, currency = _price(price), None
    state = ctx.find_object(CliState)
    if per_segment is None and state is not None:
        try:
            per_segment, currency = _configured_price(state, channel)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
    elif state is not None and channel is not None:
        try:
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
