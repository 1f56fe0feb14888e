"""``python -m app.evaluate ...`` = ``routeirl evaluate ...``, without installing the package."""

import sys

from app.cli import main

sys.exit(main(["evaluate", *sys.argv[1:]]))
