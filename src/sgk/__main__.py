"""``python -m sgk``: the ``sgk`` command line (see :mod:`sgk.cli`)."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
