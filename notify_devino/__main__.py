"""``python -m notify_devino`` is the ``notify-devino`` command."""

from .cli import main

main()
