"""The demo finds its real clip from --clip, --data or $DCPOSE_TRT_SHARED_DATA, never silently elsewhere."""

from __future__ import annotations

import pytest

from dcpose_trt import demo
from dcpose_trt.errors import InputError


@pytest.fixture()
def data_root(tmp_path):
    clip = tmp_path / "data" / demo.CLIP_IN_DATA
    clip.mkdir(parents=True)
    (clip / "boxes.json").write_text("[]")
    return tmp_path / "data"


def test_clip_from_data_env_or_argument(data_root, tmp_path, monkeypatch):
    monkeypatch.delenv(demo.DATA_ENV, raising=False)
    assert demo.resolve_clip(None, str(data_root)) == data_root / demo.CLIP_IN_DATA
    monkeypatch.setenv(demo.DATA_ENV, str(data_root))
    assert demo.resolve_clip(None, None) == data_root / demo.CLIP_IN_DATA
    assert demo.resolve_clip(str(data_root / demo.CLIP_IN_DATA), str(tmp_path / "elsewhere")) == (
        data_root / demo.CLIP_IN_DATA)


def test_a_named_place_without_the_clip_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(demo.DATA_ENV, raising=False)
    with pytest.raises(InputError, match="--data"):
        demo.resolve_clip(None, str(tmp_path))
    with pytest.raises(InputError, match="--clip"):
        demo.resolve_clip(str(tmp_path), None)
    monkeypatch.setenv(demo.DATA_ENV, str(tmp_path / "nope"))
    with pytest.raises(InputError, match=r"\$DCPOSE_TRT_SHARED_DATA"):
        demo.resolve_clip(None, None)
    assert demo.main(["--out", str(tmp_path / "out"), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("demo: error: --data") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_implicit_default_may_be_absent(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(demo.DATA_ENV, raising=False)
    monkeypatch.setattr(demo, "REPO", tmp_path / "checkout")
    assert demo.resolve_clip(None, None) is None
    assert "running on the synthetic video only" in capsys.readouterr().out
