"""`python -m posekit` (also what `torchrun -m posekit` starts)."""

import sys

from posekit.cli.main import main

sys.exit(main())
