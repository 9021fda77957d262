"""``python -m tcc_otel``: the ``tcc-otel`` command line."""

from __future__ import annotations

import sys

from tcc_otel._cli import main

if __name__ == "__main__":
    sys.exit(main())
