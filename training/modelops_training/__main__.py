"""`python -m modelops_training`: train and register the wine-quality models."""

from modelops_training.cli import main

raise SystemExit(main())
