"""`python -m edge_agent run --config FILE`."""

import sys

from edge_agent.cli import main

sys.exit(main())
