import pytest
from kedro.io import DatasetError

from qeu_kedro.datasets._model_folder import ModelFolderDataset


class DemoDataset(ModelFolderDataset):
    MARKER = "weights.bin"
    RUN_FIRST = "kedro run --pipelines demo"

    def load(self) -> str:
        return self.source()

    def save(self, data: bytes) -> None:
        self._save_folder(lambda tmp: (tmp / self.MARKER).write_bytes(data))


def test_needs_model_or_filepath():
    with pytest.raises(DatasetError, match="DemoDataset needs 'model' or 'filepath'"):
        DemoDataset()


def test_exists_follows_the_marker_file(tmp_path):
    folder = tmp_path / "demo"
    dataset = DemoDataset(filepath=str(folder))
    assert not dataset.exists()
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert not dataset.exists()  # a folder without the marker is not a saved model
    dataset.save(b"w")
    assert dataset.exists() and dataset.load() == str(folder)


def test_unsaved_folder_without_model_says_which_pipeline_to_run(tmp_path):
    with pytest.raises(
        DatasetError,
        match=r"No model has been saved at .*first \(kedro run --pipelines demo, with the same --env as this run\)\.",
    ):
        DemoDataset(filepath=str(tmp_path / "demo")).load()


def test_unsaved_folder_falls_back_to_the_model_spec(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    assert DemoDataset(model=str(base), filepath=str(tmp_path / "demo")).load() == str(base)


def test_save_needs_a_filepath(tmp_path):
    with pytest.raises(DatasetError, match="no 'filepath' to save to"):
        DemoDataset(model=str(tmp_path)).save(b"w")


def test_offline_source_is_the_folder_on_this_machine_or_none(tmp_path):
    """What the parameter check may read a config.json from: never a download, even where the entry allows one."""
    saved = tmp_path / "saved"
    DemoDataset(filepath=str(saved)).save(b"w")
    assert DemoDataset(filepath=str(saved), model="owner/name").offline_source() == str(saved)
    assert DemoDataset(model=str(saved)).offline_source() == str(saved)
    assert DemoDataset(model="owner/not-downloaded", allow_download=True).offline_source() is None
    assert DemoDataset(filepath=str(tmp_path / "unsaved")).offline_source() is None
