"""docker spy: which system calls is this container making, and how many?"""

import time

__version__ = "0.1.0"

# When this process reached docker spy's code (this package is the first of it imported): the
# debug log's "plugin started" says it, so that a run's phases can be timed from outside.
STARTED = time.time()
