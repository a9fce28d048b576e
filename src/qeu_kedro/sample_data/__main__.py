"""Write the project's sample data: ``python -m qeu_kedro.sample_data [NAME ...]``."""

from __future__ import annotations

import sys
from pathlib import Path

from qeu_kedro.sample_data import alpaca, jrte, movies, pairs

WRITERS = {
    "movies": movies.write_movies,
    "alpaca": alpaca.write_alpaca,
    "jrte": jrte.write_pn,
    "pairs": pairs.write_pairs,
}


def main(argv: list[str]) -> None:
    import difflib

    folder = Path("data/01_raw")
    for name in argv:
        if name not in WRITERS:
            close = difflib.get_close_matches(name, list(WRITERS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise SystemExit(f"Unknown sample '{name}'.{hint} Samples: {', '.join(WRITERS)} (none: all of them).")
    for name in argv or list(WRITERS):
        for path in WRITERS[name](folder):
            print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
