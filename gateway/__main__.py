"""``python -m gateway`` is the ``onewindow`` command."""

from gateway.cli import main

main()
