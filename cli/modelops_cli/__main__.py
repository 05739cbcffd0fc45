import sys

from modelops_cli.main import main

sys.exit(main())
