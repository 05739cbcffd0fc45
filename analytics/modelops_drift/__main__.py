"""Entry point for `python -m modelops_drift`."""

import sys

from modelops_drift.cli import main

sys.exit(main())
