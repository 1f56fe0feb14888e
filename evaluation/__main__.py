"""``python -m evaluation ...`` = ``routeirl evaluate ...``."""

import sys

from evaluation.command import main

if __name__ == "__main__":
    sys.exit(main())
