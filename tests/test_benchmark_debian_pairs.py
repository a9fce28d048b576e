"""benchmarks/debian_pairs.py: Debian's package descriptions as a held-out query -> document set."""

import pandas as pd
import pytest

from qeu_kedro.parameters import base_parameters, check_parameters
from tests.conftest import REPO, load_benchmark, load_config

TRANSLATION = """\
Package: 0ad
Description-md5: d943033bedada21853d2ae54a2578a7b
Description-en: Real-time strategy game of ancient warfare
 0 A.D. is a free, open-source real-time strategy game.
 .
 It is historically based.

Package: 0ad-data
Description-md5: 26581e685027d5ae84824362a4ba59ee
Description-en: Real-time strategy game of ancient warfare (data files)
 0 A.D. is a free, open-source real-time strategy game.
 .
 It is historically based.

Package: foo-transitional
Description-md5: 00000000000000000000000000000001
Description-en: transitional package
 This package eases upgrades to foo and can be removed.

Package: bar-transitional
Description-md5: 00000000000000000000000000000002
Description-en: Transitional package
 This package eases upgrades to bar and can be removed safely.

Package: coreutils
Description-md5: d0d975dec3625409d24be1238cede238
Description-en: GNU core utilities
 This package contains the basic file, shell and text manipulation
 utilities which are expected to exist on every operating system.
"""


@pytest.fixture(scope="module")
def script():
    return load_benchmark("debian_pairs")


def test_a_stanza_becomes_one_pair_with_its_paragraphs(script):
    table = script.parse(TRANSLATION)
    assert list(table.package) == ["0ad", "0ad-data", "foo-transitional", "bar-transitional", "coreutils"]
    first = table.iloc[0]
    assert first.synopsis == "Real-time strategy game of ancient warfare"
    assert first.description == "0 A.D. is a free, open-source real-time strategy game.\nIt is historically based."
    assert table.iloc[4].description == (
        "This package contains the basic file, shell and text manipulation "
        "utilities which are expected to exist on every operating system."
    )


def test_a_query_with_two_right_answers_is_dropped(script):
    table = script.parse(TRANSLATION)
    # 0ad / 0ad-data share a description; the two transitional packages share a synopsis (case aside)
    kept = script.select(table, n=1, seed=0, min_words=5)
    assert list(kept.package) == ["coreutils"]
    with pytest.raises(SystemExit, match="more than the 1 packages kept"):
        script.select(table, n=2, seed=0, min_words=5)


def test_the_sample_is_seeded(script):
    rows = [(f"p{i}", f"synopsis {i}", f"description number {i} " + "word " * 20) for i in range(50)]
    table = pd.DataFrame(rows, columns=["package", "synopsis", "description"])
    a, b = script.select(table, 10, 3, 15), script.select(table, 10, 3, 15)
    assert a.equals(b) and len(a) == 10 and not a.equals(script.select(table, 10, 4, 15))


def test_the_environment_names_the_columns_and_leaves_the_recipe_to_conf_base():
    merged = load_config(REPO, "debian", "parameters")
    check_parameters(merged, base_parameters(REPO / "conf"))
    base = load_config(REPO, None, "parameters")["bge_finetune"]
    debian = merged["bge_finetune"]
    assert debian["source"] == {
        **base["source"],
        "anchor_column": "synopsis",
        "positive_column": "description",
        "id_column": "package",
    }

    def recipe(block: dict) -> dict:
        return {k: v for k, v in block.items() if k not in ("source", "labels")}

    assert recipe(debian) == recipe(base)
    assert debian["labels"]["data"] == "Debian package synopsis -> description"
    catalog = load_config(REPO, "debian", "catalog")
    assert catalog["bge_pairs"]["filepath"] == "data/benchmarks/debian/pairs.csv"


def test_the_release_file_is_used_only_when_its_signature_verifies(tmp_path, script, capsys):
    """InRelease was fetched over plain HTTP and its checksums trusted unsigned: now its signature is checked
    with gpgv. A throw-away key stands in for Debian's archive key."""
    import shutil
    import subprocess

    if shutil.which("gpg") is None or shutil.which("gpgv") is None:
        pytest.skip("gpg and gpgv are not installed")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run(
        [*gpg, "--quick-gen-key", "test@example.org", "ed25519", "sign", "1d"], check=True, capture_output=True
    )
    keyring = tmp_path / "keyring.gpg"
    keyring.write_bytes(subprocess.run([*gpg, "--export"], check=True, capture_output=True).stdout)
    release = "SHA256:\n " + "a" * 64 + " 123 main/i18n/Translation-en.xz\n"
    signed = subprocess.run([*gpg, "--clearsign"], input=release.encode(), check=True, capture_output=True).stdout
    assert script.signed_text(signed, keyring) == release
    tampered = signed.replace(b"a" * 64, b"b" * 64)  # another checksum, the signature kept
    with pytest.raises(SystemExit, match="signature does not verify"):
        script.signed_text(tampered, keyring)
    other = tmp_path / "other.gpg"  # a keyring without the signer's key
    other.write_bytes(b"")
    with pytest.raises(SystemExit, match="signature does not verify"):
        script.signed_text(signed, other)
    # no keyring installed: the text as fetched, and a warning that says so
    assert script.signed_text(signed, tmp_path / "absent.gpg") == signed.decode()
    assert "signature is not checked" in capsys.readouterr().out
