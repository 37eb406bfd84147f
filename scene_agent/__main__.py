"""``python -m scene_agent``: the same command line as ``scene-agent``."""

import sys

from scene_agent.cli import main

sys.exit(main())
