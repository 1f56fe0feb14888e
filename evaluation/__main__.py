"""``python -m evaluation ...`` = ``routeirl evaluate ...``, without installing the package."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
