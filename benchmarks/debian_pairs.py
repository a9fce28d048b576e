"""A query -> document set from a domain the bge_finetune recipe was never tuned on: Debian packages.

Issue 12 asks that a new question -> answer set run through a configuration environment alone and
that the default recipe gain there. The recipe was tuned on TMDB and XQuAD; this script builds a third,
held-out domain to check that before anyone else does: each Debian package's one-line synopsis (the
query, e.g. "GNU core utilities") and its long description (the document).

Source: Debian bookworm's English package descriptions, `main/i18n/Translation-en.xz`, fetched from the
Debian mirror over HTTPS (a package registry these machines reach) and checked against the SHA-256 that the
release's `InRelease` file lists; that file's signature is checked with `gpgv` against Debian's archive keyring
(`/usr/share/keyrings/debian-archive-keyring.gpg`, the `debian-archive-keyring` package) where both are installed,
otherwise only TLS vouches for it (a warning says so). The descriptions carry their packages' licences: the file and the
pairs are written under data/benchmarks/ (git-ignored), never into the repository.

Rows kept: synopsis and description each unique in the whole file (packages that share a description,
such as `0ad` and `0ad-data`, or a synopsis, such as "transitional package", would make a query with
several right answers), a description of at least `--min-words` words. Then a seeded sample of `--n`
packages. Output columns: package (the id), synopsis, description.

    python benchmarks/debian_pairs.py --n 3000 --seed 0 --out data/benchmarks/debian/pairs.csv
    kedro run --env debian --pipelines bge_finetune     # conf/debian: the catalog entry and column names only
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import re
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pandas as pd

MIRROR = "https://deb.debian.org/debian/dists/bookworm"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
MEMBER = "main/i18n/Translation-en.xz"


def signed_text(clearsigned: bytes, keyring: Path) -> str:
    """The text of a clear-signed file (Debian's ``InRelease``) whose signature ``gpgv`` verifies against
    ``keyring``; without gpgv or the keyring, the file as fetched, with a warning (TLS alone vouches for it)."""
    gpgv = shutil.which("gpgv")
    if gpgv is None or not keyring.is_file():
        print(f"warning: gpgv or {keyring} is missing: InRelease's signature is not checked (TLS only)")
        return clearsigned.decode()
    with tempfile.TemporaryDirectory() as folder:
        signed = Path(folder) / "InRelease"
        signed.write_bytes(clearsigned)
        done = subprocess.run(
            [gpgv, "--keyring", str(keyring), "--output", "-", str(signed)], capture_output=True, check=False
        )
    if done.returncode != 0:
        raise SystemExit(
            f"InRelease: the signature does not verify against {keyring}; not used:\n{done.stderr.decode()}"
        )
    return done.stdout.decode()


def fetch(cache: Path) -> bytes:
    """The compressed file, from the cache or the mirror; its SHA-256 must be the one InRelease lists."""
    with urllib.request.urlopen(f"{MIRROR}/InRelease", timeout=60) as response:
        release = signed_text(response.read(), KEYRING)
    listed = {
        line.split()[0]
        for line in release.splitlines()
        if line.strip().endswith(" " + MEMBER) and len(line.split()[0]) == 64
    }
    if not listed:
        raise SystemExit(f"{MIRROR}/InRelease lists no SHA-256 for {MEMBER}: is the mirror a Debian release?")
    if cache.exists() and hashlib.sha256(cache.read_bytes()).hexdigest() in listed:
        return cache.read_bytes()
    with urllib.request.urlopen(f"{MIRROR}/{MEMBER}", timeout=300) as response:
        blob = response.read()
    digest = hashlib.sha256(blob).hexdigest()
    if digest not in listed:
        raise SystemExit(f"{MEMBER}: SHA-256 {digest} is not the one InRelease lists ({sorted(listed)}); not used")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(blob)
    return blob


def parse(text: str) -> pd.DataFrame:
    """One row per stanza: package, synopsis (the Description-en line), description (its body as prose)."""
    rows = []
    for stanza in text.split("\n\n"):
        package = re.search(r"^Package: (.+)$", stanza, re.M)
        body = re.search(r"^Description-en: (.*)\n((?: .*\n?)*)", stanza, re.M)
        if not (package and body):
            continue
        lines = [line[1:] for line in body.group(2).splitlines()]
        # Debian's format: " ." is an empty line (a paragraph break); lines starting with two spaces are verbatim.
        paragraphs = " ".join("\n" if line.strip() == "." else line.strip() for line in lines)
        description = re.sub(r"\s*\n\s*", "\n", paragraphs).strip()
        rows.append((package.group(1).strip(), body.group(1).strip(), description))
    return pd.DataFrame(rows, columns=["package", "synopsis", "description"])


def select(table: pd.DataFrame, n: int, seed: int, min_words: int) -> pd.DataFrame:
    unique = ~table.synopsis.str.lower().duplicated(keep=False) & ~table.description.duplicated(keep=False)
    long_enough = table.description.str.split().str.len() >= min_words
    kept = table[unique & long_enough]
    print(
        f"{len(table)} packages; {int(unique.sum())} with a unique synopsis and description; "
        f"{len(kept)} of them with >= {min_words} words"
    )
    if n > len(kept):
        raise SystemExit(f"--n {n} is more than the {len(kept)} packages kept")
    return kept.sample(n=n, random_state=seed).sort_values("package").reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="packages (pairs) to keep")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample of packages")
    parser.add_argument("--min-words", type=int, default=15, help="shortest description kept, in words")
    parser.add_argument("--out", type=Path, default=Path("data/benchmarks/debian/pairs.csv"))
    parser.add_argument("--cache", type=Path, default=Path("data/benchmarks/debian/Translation-en.xz"))
    args = parser.parse_args()
    table = parse(lzma.decompress(fetch(args.cache)).decode("utf-8"))
    pairs = select(table, args.n, args.seed, args.min_words)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pairs.to_csv(args.out, index=False)
    words = pairs.description.str.split().str.len()
    print(f"wrote {len(pairs)} pairs to {args.out}; description words median {words.median():.0f}, max {words.max()}")


if __name__ == "__main__":
    main()
