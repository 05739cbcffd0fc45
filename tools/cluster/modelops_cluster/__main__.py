"""`python -m modelops_cluster`: see modelops_cluster.cli."""

from modelops_cluster.cli import main

raise SystemExit(main())
