"""``python -m tests.peers install``: install the peers that are missing (see each module).

Every module of this package with an ``install()`` is a peer: it is asked in turn."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if argv[:1] != ["install"]:
        print("usage: python -m tests.peers install", file=sys.stderr)
        return 2
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        module = importlib.import_module(f"tests.peers.{info.name}")
        if callable(getattr(module, "install", None)):
            module.install()
    return 0  # a machine that may not install runs the rest; the peers' tests say why


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
