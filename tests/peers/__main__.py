"""``python -m tests.peers install``: install the peers that are missing (see each module)."""

from __future__ import annotations

import sys

from . import alertmanager


def main(argv: list[str]) -> int:
    if argv[:1] != ["install"]:
        print("usage: python -m tests.peers install", file=sys.stderr)
        return 2
    found = alertmanager.install()
    if found is not None:
        print(f"alertmanager: {alertmanager.version(found)}", file=sys.stderr)
    return 0  # a machine that may not install runs the rest; the Alertmanager tests say why


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
