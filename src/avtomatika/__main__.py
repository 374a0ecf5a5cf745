"""``python -m avtomatika`` is the ``avtomatika`` command."""

from avtomatika.cli.main import main

main()
