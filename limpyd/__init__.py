"""limpyd: a Python ORM for Redis, with just as much abstraction as needed."""

__version__ = "2.0.0.dev0"

VERSION = __version__
