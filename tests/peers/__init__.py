"""Real peers the tests run against that are not Python packages (Alertmanager, PostgreSQL).
``python -m tests.peers install`` fetches what is missing, when it may."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
"""While it exists and exits 101, Debian's maintainer scripts start no service: the tests
start their own server on a free port, never the system's."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def apt_install(
    name: str,
    package: str,
    find: Callable[[], Path | None],
    missing_hint: str,
    *,
    quiet: bool = False,
) -> Path | None:
    """Make sure ``find()`` finds what Debian's ``package`` installs: install it with apt-get
    when it does not, as root, with no service started.

    :param name: what to call it in messages.
    :param missing_hint: what a user can do instead, said when this process may not install.
    :return: what ``find()`` returns, or None when it is missing and this process may not
        install it (not root, no apt-get).
    """

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr)

    found = find()
    if found is not None:
        say(f"{name}: {found}")
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        why = "not root" if os.geteuid() != 0 else "no apt-get"
        say(f"{name}: not found and not installed ({why}): {missing_hint}")
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    known = subprocess.run(
        ["apt-cache", "show", package], capture_output=True, text=True, env=env, check=False
    )
    if known.returncode != 0 or not known.stdout.strip():
        say(f"{name}: apt-get update")
        subprocess.run(["apt-get", "update"], check=True, env=env)
    ours = not POLICY_RC_D.exists()
    if ours:
        POLICY_RC_D.write_text("#!/bin/sh\n# notify-devino tests: no service starts\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        say(f"{name}: apt-get install {package}")
        subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", package], check=True, env=env
        )
    finally:
        if ours:
            POLICY_RC_D.unlink()
    return find()
