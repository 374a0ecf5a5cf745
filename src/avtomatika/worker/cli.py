"""``avtomatika worker module:attribute`` — run a ``Worker`` defined in the user's code.

The main ``avtomatika`` command group adds :data:`worker_command`; :func:`run_worker` is the
same thing for scripts.
"""

import logging

import click

from avtomatika.errors import ConfigError
from avtomatika.targets import load_target
from avtomatika.worker.app import Worker
from avtomatika.worker.errors import OrchestratorError


def load_worker(target: str) -> Worker:
    """The ``Worker`` named by ``"module:attribute"``, importing the module from the current directory."""
    return load_target(target, Worker, "an avtomatika.worker.Worker instance", "my_worker:worker")


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
    try:
        worker.run()
    except OrchestratorError as exc:
        # Only a refusal escapes ``run()`` (an unreachable orchestrator is retried): say what to fix.
        hint = " (check the worker token)" if exc.status in (401, 403) else ""
        raise click.ClickException(
            f"worker '{worker.worker_id}': {worker.settings.orchestrator_url} refused it{hint}: {exc}"
        ) from exc
