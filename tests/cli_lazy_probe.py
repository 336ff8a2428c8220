"""A core command for tests/test_cli.py that must not be imported until it runs."""

from __future__ import annotations

import click


@click.command()
def probe() -> None:
    """Loaded only when run."""
    click.echo("probe ran")
