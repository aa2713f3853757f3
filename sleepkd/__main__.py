"""``python -m sleepkd``: the same as the ``sleepkd`` command."""

import sys

from sleepkd.cli import main

if __name__ == "__main__":  # pragma: no branch
    sys.exit(main())
