"""Nothing written half-way: a table, report or figure whose save fails part-way keeps its previous file."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import textwrap

import matplotlib
import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version

from qeu_kedro.datasets import CSVDataset, FigureDataset, MarkdownDataset, ParquetDataset

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend


def table(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"fold": np.arange(rows) % 5, "r2_test": np.linspace(0.1, 0.2, rows), "name": ["m"] * rows})


def figure(size: float):
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(np.random.default_rng(0).random((50, 50)))
    return fig


# kind: (the dataset in a folder, its first data, bigger data that replaces it); figures are drawn in data_for
CASES = {
    "csv": (lambda path: CSVDataset(filepath=str(path / "scores.csv")), table(20), table(5000)),
    "parquet": (lambda path: ParquetDataset(filepath=str(path / "scores.parquet")), table(20), table(5000)),
    "markdown": (
        lambda path: MarkdownDataset(filepath=str(path / "report.md")),
        "# Report\n\nConclusion: good.\n",
        "# Report\n\n" + "| row | value |\n" * 5000 + "\nConclusion: better.\n",
    ),
    "figure": (lambda path: FigureDataset(filepath=str(path / "bars.png")), None, None),
}


class DiskFull:
    """A file that takes the first ``room`` bytes written to it, then fails as a full disk does."""

    def __init__(self, file, room: int) -> None:
        self._file, self._room = file, room

    def write(self, data):
        if len(data) > self._room:
            self._file.write(data[: self._room])
            self._file.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(data)
        return self._file.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


def fill_disk_after(monkeypatch, dataset, room: int = 100) -> None:
    # fsspec shares one file system object between datasets: patched through monkeypatch, undone after the test
    opened = dataset._fs.open
    monkeypatch.setattr(dataset._fs, "open", lambda path, *a, **k: DiskFull(opened(path, *a, **k), room))


def data_for(kind: str, which: int):
    if kind == "figure":
        return figure(2 if which == 0 else 6)
    return CASES[kind][1 + which]


def loaded(dataset, kind: str):
    if kind == "figure":
        from PIL import Image

        with Image.open(dataset.load()) as image:
            image.load()
            return image.size
    return dataset.load()


@pytest.mark.parametrize("kind", list(CASES))
def test_a_save_that_fails_part_way_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch, kind):
    dataset = CASES[kind][0](tmp_path)
    dataset.save(data_for(kind, 0))
    path = tmp_path / os.path.basename(str(dataset._filepath))
    before = path.read_bytes()

    broken = CASES[kind][0](tmp_path)
    fill_disk_after(monkeypatch, broken)
    with pytest.raises(DatasetError, match="No space left on device"):
        broken.save(data_for(kind, 1))
    plt.close("all")

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    loaded(dataset, kind)  # still the whole previous file


@pytest.mark.parametrize("kind", list(CASES))
def test_a_save_replaces_the_file_whole_and_round_trips(tmp_path, kind):
    dataset = CASES[kind][0](tmp_path)
    dataset.save(data_for(kind, 0))
    first = loaded(dataset, kind)
    dataset.save(data_for(kind, 1))
    plt.close("all")
    second = loaded(dataset, kind)
    if kind in ("csv", "parquet"):
        pd.testing.assert_frame_equal(second, table(5000))
    elif kind == "markdown":
        assert second == CASES[kind][2]
    else:
        assert second != first and str(dataset.load()) == str(tmp_path / "bars.png")
    assert len(list(tmp_path.iterdir())) == 1  # no temporary file beside it
    assert (tmp_path / os.listdir(tmp_path)[0]).stat().st_mode & 0o777 != 0o600  # the umask's mode, not mkstemp's


def test_a_versioned_table_is_written_whole_as_a_new_version(tmp_path, monkeypatch):
    path = tmp_path / "scores.csv"
    CSVDataset(filepath=str(path), version=Version(None, "2026-01-01T00.00.00.000Z")).save(table(3))
    broken = CSVDataset(filepath=str(path), version=Version(None, "2026-01-02T00.00.00.000Z"))
    with monkeypatch.context() as patch:
        fill_disk_after(patch, broken, room=10)
        with pytest.raises(DatasetError):
            broken.save(table(50))
    assert sorted(p.name for p in path.iterdir()) == ["2026-01-01T00.00.00.000Z"]  # no empty, no half version
    latest = CSVDataset(filepath=str(path), version=Version(None, None))
    pd.testing.assert_frame_equal(latest.load(), table(3))
    latest.save(table(7))
    assert len(list(path.iterdir())) == 2
    pd.testing.assert_frame_equal(CSVDataset(filepath=str(path), version=Version(None, None)).load(), table(7))
    assert [p.name for p in path.rglob("*") if p.name.startswith(".")] == []


def test_the_temporary_file_of_a_killed_save_goes_with_the_next_save(tmp_path, caplog):
    path = tmp_path / "scores.csv"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".scores.csv.tmp-{dead.pid}-0123abcd"
    stale.write_bytes(b"fold,r2")
    with caplog.at_level(logging.WARNING):
        CSVDataset(filepath=str(path)).save(table(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]
    assert "Removed 1 temporary file(s) of interrupted saves" in caplog.text


def test_a_list_of_figures_is_still_a_folder_of_pngs(tmp_path):
    dataset = FigureDataset(filepath=str(tmp_path / "figures"))
    dataset.save([figure(1), figure(2)])
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["0.png", "1.png"]


def test_a_file_size_limit_keeps_the_previous_csv(tmp_path):
    """The audit's reproduction: ``ulimit -f`` makes the write fail with EFBIG part-way."""
    path = tmp_path / "ridge_cv_scores.csv"
    CSVDataset(filepath=str(path)).save(table(20))
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import resource, numpy as np, pandas as pd
        from qeu_kedro.datasets import CSVDataset
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        rows = 300_000
        CSVDataset(filepath={str(path)!r}).save(pd.DataFrame({{"fold": np.arange(rows) % 5, "r2": np.linspace(0, 1, rows)}}))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "File too large" in run.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
