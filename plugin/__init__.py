"""docker spy: which system calls is this container making, and how many?"""

__version__ = "0.1.0"
