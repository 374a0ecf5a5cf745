"""``avtomatika worker module:attribute`` — run a ``Worker`` defined in the user's code.

The main ``avtomatika`` command group adds :data:`worker_command`; :func:`run_worker` is the
same thing for scripts.
"""

import importlib
import logging
import os
import sys

import click

from avtomatika.errors import ConfigError
from avtomatika.worker.app import Worker


def load_worker(target: str) -> Worker:
    """The ``Worker`` named by ``"module:attribute"``, importing the module from the current directory."""
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ConfigError(
            f"worker target {target!r} must look like 'module:attribute', e.g. 'my_worker:worker'"
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} (searched from {cwd}): {exc}") from exc
    worker = getattr(module, attribute, None)
    if not isinstance(worker, Worker):
        found = "nothing" if worker is None else f"a {type(worker).__name__}"
        raise ConfigError(f"{target!r} must name an avtomatika.worker.Worker instance, found {found}")
    return worker


def run_worker(target: str) -> None:
    """Load the worker named by ``target`` and run it until SIGINT/SIGTERM."""
    load_worker(target).run()


@click.command("worker")
@click.argument("target")
def worker_command(target: str) -> None:
    """Run the Worker instance TARGET, given as module:attribute (importable from the current directory)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        worker = load_worker(target)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    worker.run()
