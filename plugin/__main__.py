"""`python3 -m docker_spy` (installed), or `python3 plugin/__main__.py` (the docker-spy front)."""

import os
import sys

if __package__:
    from .cli import main
else:
    # Run as a file: sys.path[0] is plugin/ itself, whose modules must not pass for top-level
    # ones; its parent holds the package, and the front beside it is what install links to.
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[0] = checkout
    sys.argv[0] = os.path.join(checkout, "docker-spy")
    from plugin.cli import main

sys.exit(main())
