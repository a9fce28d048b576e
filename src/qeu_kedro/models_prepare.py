"""Prepare every bundled model once (conversions are cached): ``python -m qeu_kedro.models_prepare``.

The set-up script runs this so that the first ``kedro run`` does not pay for conversions.
"""

from __future__ import annotations

import logging
import sys
import time

from qeu_kedro.models import BUNDLED, resolve_model


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in list(BUNDLED):
        start = time.perf_counter()
        path = resolve_model(f"bundled:{name}")
        print(f"[models] bundled:{name} -> {path} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
