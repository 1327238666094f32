"""`python -m pytest_swapkl ...` is the `swapkl` command (and what `torchrun -m pytest_swapkl` launches)."""

import sys

from .commands.cli import main

sys.exit(main())
