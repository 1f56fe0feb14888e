"""The ``routeirl`` command: ``routeirl serve``, ``routeirl worker``, and plugins such as ``routeirl evaluate``.

Subcommands live in a registry. This module registers its own with :func:`command`; other
installed packages add theirs as plugins, through the ``routeirl.commands`` entry-point
group (``evaluate = "evaluation.command"`` in pyproject.toml): the entry point names a
module (or object) with ``HELP``, ``configure(parser)`` and ``run(args) -> int``. So the
service does not know its plugins, and a plugin does not import the service.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points

__all__ = ["COMMANDS", "Command", "command", "main"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    configure: Callable[[argparse.ArgumentParser], None] | None = None


#: name -> Command, in registration order (that is the order of ``routeirl --help``).
COMMANDS: dict[str, Command] = {}

#: The entry-point group through which installed packages add subcommands.
PLUGIN_GROUP = "routeirl.commands"


def command(
    name: str, *, help: str, configure: Callable[[argparse.ArgumentParser], None] | None = None
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Register ``run`` as subcommand ``name``."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(name=name, help=help, run=run, configure=configure)
        return run

    return register


def _configure_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="interface to bind (default: ROUTEIRL_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: ROUTEIRL_PORT or 8000)")
    p.add_argument("--workers", type=int, help="API processes (default: ROUTEIRL_WORKERS or 2)")
    p.add_argument("--reload", action="store_true", help="restart on code changes (development; one process)")


@command("serve", help="run the API (uvicorn app.main:app, with the timeouts and checks of app.server)",
         configure=_configure_serve)
def serve(args: argparse.Namespace) -> int:
    from app import server

    argv = [f"--{name}={value}" for name in ("host", "port", "workers") if (value := getattr(args, name))]
    return server.main(argv + (["--reload"] if args.reload else []))


def _configure_worker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job", type=int, required=True, help="id of a job in state 'running'")
    p.add_argument("--settings", help="settings as JSON (default: from ROUTEIRL_* variables)")
    p.add_argument("--parent-pid", type=int, help="abort when this process is no longer our parent")


@command("worker", help="run one training job (the API starts this itself)", configure=_configure_worker)
def worker(args: argparse.Namespace) -> int:
    from app.jobs import worker as w

    argv = ["--job", str(args.job)]
    if args.settings:
        argv += ["--settings", args.settings]
    if args.parent_pid:
        argv += ["--parent-pid", str(args.parent_pid)]
    return w.main(argv)


def _load_plugins() -> None:
    """Register the subcommands of installed plugins (entry points of :data:`PLUGIN_GROUP`)."""
    for ep in entry_points(group=PLUGIN_GROUP):
        if ep.name in COMMANDS:
            continue
        plugin = ep.load()
        COMMANDS[ep.name] = Command(name=ep.name, help=plugin.HELP, run=plugin.run, configure=plugin.configure)


def build_parser() -> argparse.ArgumentParser:
    _load_plugins()
    parser = argparse.ArgumentParser(prog="routeirl", description="routeirl: learn and predict driving routes.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        if cmd.configure is not None:
            cmd.configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(COMMANDS[args.command].run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
