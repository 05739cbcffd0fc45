"""`python -m modelops_operator [kopf run options]`: kopf run with this package's handlers."""

import sys

from kopf.cli import main

if __name__ == "__main__":
    sys.argv = ["kopf", "run", "-m", "modelops_operator.handlers", *sys.argv[1:]]
    sys.exit(main())
