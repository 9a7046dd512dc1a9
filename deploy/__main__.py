"""`python -m deploy STEP --help`: the thin command around the declarative stack (deploy/stack.py)."""

import sys

from deploy.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
