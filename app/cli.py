"""The ``routeirl`` command: ``routeirl serve``, ``routeirl worker`` ...

Subcommands live in a registry so another module can add one without touching
:func:`main`: decorate a function ``run(args) -> int`` with :func:`command`, giving a
``configure(parser)`` that adds its arguments::

    @command("evaluate", help="...", configure=lambda p: p.add_argument("--trips"))
    def evaluate(args: argparse.Namespace) -> int: ...

Modules listed in :data:`EXTENSION_MODULES` are imported (if present) before parsing, so
a subcommand can also live in its own module.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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

#: Optional modules that register more subcommands when imported (missing ones are skipped).
EXTENSION_MODULES: tuple[str, ...] = ("evaluation", "app.cli_evaluate")


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


@command("serve", help="run the API (uvicorn app.main:app)", configure=_configure_serve)
def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.settings import Settings

    settings = Settings()
    uvicorn.run(
        "app.main:app",
        host=args.host or settings.host,
        port=args.port or settings.port,
        reload=args.reload,
        workers=None if args.reload else (args.workers or settings.workers),
        log_level=settings.log_level,
    )
    return 0


def _configure_worker(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job", type=int, required=True, help="id of a job in state 'running'")
    p.add_argument("--settings", help="settings as JSON (default: from ROUTEIRL_* variables)")
    p.add_argument("--parent-pid", type=int, help="abort when this process is no longer our parent")


@command("worker", help="run one training job (the API starts this itself)", configure=_configure_worker)
def worker(args: argparse.Namespace) -> int:
    from app import worker as w

    argv = ["--job", str(args.job)]
    if args.settings:
        argv += ["--settings", args.settings]
    if args.parent_pid:
        argv += ["--parent-pid", str(args.parent_pid)]
    return w.main(argv)


def _load_extensions() -> None:
    for name in EXTENSION_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but one of its imports is missing
                raise


def build_parser() -> argparse.ArgumentParser:
    _load_extensions()
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
    # Run as ``python -m app.cli``, this file is ``__main__``, and extension modules register their
    # commands in the importable ``app.cli``, a different module object: dispatch through that one.
    from app.cli import main as _main

    sys.exit(_main())
