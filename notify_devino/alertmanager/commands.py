"""``notify-devino template render``: the SMS an Alertmanager payload would become.

::

    notify-devino template render --payload group.json [--route db] [--json]

prints the text, then its parts, encoding and cost as the route's first channel counts them,
and any warning (a character that forces UCS-2, a text over the budget).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..cliapi import EXIT_USAGE, CliState, emit_json, fail
from ..dispatcher import Dispatcher
from ..errors import NotifyError
from ..routing import select_route
from .matchers import route_for_labels
from .payload import PayloadError, parse_payload
from .receiver import template_for
from .templates import Rendered


@click.group("template")
def template_group() -> None:
    """Alert SMS templates."""


@template_group.command("render")
@click.option(
    "--payload",
    "payload_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="An Alertmanager webhook body (JSON, version 4); - reads standard input.",
)
@click.option("--route", help="Take this route instead of the one the alert labels match.")
@click.option("--ack-code", default="0000", show_default=True, help="The code to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def render(
    ctx: click.Context, payload_file: Path, route: str | None, ack_code: str, as_json: bool
) -> None:
    """Print the SMS a webhook payload becomes on its route, with its parts and cost."""
    state = ctx.find_object(CliState)
    assert state is not None
    try:
        if str(payload_file) == "-":
            raw = sys.stdin.read()
        else:
            raw = payload_file.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {payload_file}: {exc.strerror}", EXIT_USAGE)
    try:
        message = parse_payload(raw)
    except PayloadError as exc:
        fail(str(exc), EXIT_USAGE)

    async def work(dispatcher: Dispatcher) -> tuple[str | None, str, Rendered]:
        chosen = (
            route
            if route is not None
            else route_for_labels(dispatcher.config, message.common_labels)
        )
        plan = select_route(dispatcher.config, route=chosen) if chosen else None
        channel = plan.channels[0] if plan else dispatcher.config.default_channel
        name = dispatcher.channel(channel).name

        async def estimate(text: str) -> Any:
            return await dispatcher.estimate(text, channel=name)

        rendered = await template_for(dispatcher.config, chosen).render(
            message,
            estimate,
            ack_code=ack_code if message.status == "firing" else None,
            route=chosen,
        )
        return chosen, name, rendered

    try:
        chosen, channel, rendered = state.run(work)
    except NotifyError as exc:
        fail(str(exc), EXIT_USAGE)
    estimate = rendered.estimate
    if as_json:
        emit_json(
            {
                "route": chosen,
                "channel": channel,
                "text": rendered.text,
                "segments": estimate.segments,
                "max_segments": rendered.max_segments,
                "encoding": estimate.encoding,
                "characters": estimate.characters,
                "cost": str(estimate.cost) if estimate.cost is not None else None,
                "currency": estimate.currency,
                "shown": rendered.shown,
                "more": rendered.more,
                "fits": rendered.fits,
                "warnings": list(rendered.warnings),
            }
        )
        return
    click.echo(rendered.text)
    click.echo("")
    cost = (
        f", cost {estimate.cost}{' ' + estimate.currency if estimate.currency else ''}"
        if estimate.cost is not None
        else ""
    )
    click.echo(
        f"route: {chosen or '(none: default channel)'}, channel: {channel}\n"
        f"segments: {estimate.segments} of at most {rendered.max_segments} "
        f"({estimate.encoding or 'n/a'}, {estimate.characters} characters){cost}\n"
        f"alerts shown: {rendered.shown}, +{rendered.more} more"
    )
    for warning in rendered.warnings:
        click.echo(f"warning: {warning}", err=True)


__all__ = ["render", "template_group"]
