"""``python -m avtomatika`` is the ``avtomatika`` command."""

from avtomatika.cli import main

main()
