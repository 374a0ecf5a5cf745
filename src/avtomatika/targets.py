"""Loads the object a command line names as ``module:attribute`` (``serve``, ``graph``, ``worker``).

One function for every command, so each reports a mistake the same way: a ``ConfigError``
naming the module or attribute, which the command prints as one line instead of a traceback.
"""

import importlib
import os
import sys
from typing import TypeVar

from avtomatika.errors import ConfigError

T = TypeVar("T")


def load_target(target: str, kind: type[T], what: str, example: str) -> T:
    """The instance of ``kind`` named by ``"module:attribute"``, importing the module from the
    current directory. ``what`` names ``kind`` in errors (``'an OrchestratorEngine'``);
    ``example`` (``'app:engine'``) is shown when the target is not of that form."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"target {target!r} must look like 'module:attribute', e.g. {example!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} (searched from {cwd}): {exc}") from exc
    value = getattr(module, attribute, None)
    if not isinstance(value, kind):
        found = "nothing" if value is None else f"a {type(value).__name__}"
        raise ConfigError(f"{target!r} must name {what}, found {found}")
    return value
