"""`python -m limpyd COMMAND ...`: see `limpyd.cli`."""

import sys

from limpyd.cli import main

if __name__ == "__main__":
    sys.exit(main())
