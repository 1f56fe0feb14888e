"""``python -m app``: the ``routeirl`` command (e.g. ``python -m app serve``), without installing the package."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
