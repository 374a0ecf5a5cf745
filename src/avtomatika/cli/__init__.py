"""The ``avtomatika`` command."""
