"""A preset record cannot reach files outside the zoo: every file name it gives is a bare name,
checked when the catalogue is read and again before use, and a failed download removes only the
temporary file the zoo itself just wrote into its own cache. No network: URLs are file:// ones
or `keras.utils.get_file` is replaced."""

import hashlib
import json
import os
import warnings

import pytest

import zoo
from models.errors import GanZooError

SHA = hashlib.sha256(b"the published weights").hexdigest()


def record(name="tiny", **weights):
    return {"name": name, "model": "dcgan", "dataset": "fashion_mnist", "config": {},
            "weights": {"file": f"{name}.weights.h5", "sha256": SHA, "url": None, **weights},
            "samples": f"zoo/images/{name}.png"}


def write_record(folder, entry, file=None):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (file or f"{entry['name']}.json")
    path.write_text(entry if isinstance(entry, str) else json.dumps(entry))
    return path


@pytest.fixture
def victim(tmp_path):
    """A file of the user's outside the zoo, and the cache folder whose `gan_zoo/../../` is its
    folder: what `"file": "../../victim/x"` reaches from the cache."""
    cache = tmp_path / "home" / ".keras"
    target = tmp_path / "home" / "victim" / "x"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"precious")
    return cache, target


def test_a_record_naming_a_path_cannot_delete_a_file_outside_the_cache(victim, tmp_path, monkeypatch):
    """The attack: a record's weights file `../../victim/x` with any url. The record is refused
    with one line, and the victim file survives."""
    cache, target = victim
    served = tmp_path / "served.bin"
    served.write_bytes(b"something else")
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", str(tmp_path / "no_weights_here"))
    monkeypatch.setitem(zoo.PRESETS, "evil", record("evil", file="../../victim/x", url=served.as_uri()))
    with pytest.raises(GanZooError) as error:
        zoo.weights_file("evil", cache_dir=str(cache))
    message = str(error.value)
    assert "weights.file" in message and "'../../victim/x'" in message and "\n" not in message
    assert target.read_bytes() == b"precious"


@pytest.mark.parametrize("field, value", [
    ("file", "../../victim/x"), ("file", "/etc/passwd"), ("file", "sub/x.weights.h5"),
    ("file", "sub\\x.weights.h5"), ("file", ".."), ("file", ""), ("file", "x\x00.h5"),
    ("file", ".hidden"), ("file", 7), ("sha256", "abc"), ("url", 3),
])
def test_bad_weights_fields_are_refused_when_the_catalogue_is_read(tmp_path, field, value):
    folder = tmp_path / "presets"
    entry = record("bad")
    entry["weights"][field] = value
    path = write_record(folder, entry)
    write_record(folder, record("good"))
    refused = {}
    with pytest.warns(UserWarning, match=rf"skipped preset file .*bad\.json: weights\.{field} "):
        presets = zoo._read_presets(str(folder), refused)
    assert list(presets) == ["good"]  # the rest of the catalogue still loads
    assert refused["bad"].startswith(f"preset file {path}: weights.{field} ")
    assert "\n" not in refused["bad"] and "\x00" not in refused["bad"]


@pytest.mark.parametrize("change, field", [
    (lambda e: e.update(samples="../../x.png"), "samples"),
    (lambda e: e.update(samples="zoo/images/../x.png"), "samples"),
    (lambda e: e.update(name="../bad"), "name"),
    (lambda e: e.update(name="other"), "name"),  # not the file's own name
    (lambda e: e.pop("model"), "model"),
    (lambda e: e.pop("weights"), "weights"),
    (lambda e: e["weights"].pop("file"), "weights.file"),
    (lambda e: e.update(config=[1]), "config"),
])
def test_bad_or_missing_fields_are_named(tmp_path, change, field):
    entry = record("bad")
    change(entry)
    path = write_record(tmp_path, entry, "bad.json")
    refused = {}
    with pytest.warns(UserWarning, match="skipped preset file"):
        assert zoo._read_presets(str(tmp_path), refused) == {}
    assert refused["bad"].startswith(f"preset file {path}: {field} ") and "\n" not in refused["bad"]


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "", "\xff\xfe"])
def test_a_preset_file_that_is_not_a_record_is_one_line(tmp_path, text):
    path = write_record(tmp_path, text, "broken.json")
    refused = {}
    with pytest.warns(UserWarning, match="skipped preset file"):
        assert zoo._read_presets(str(tmp_path), refused) == {}
    assert refused["broken"].startswith(f"preset file {path}: ") and "\n" not in refused["broken"]


def test_a_refused_preset_says_why_when_asked_for(tmp_path, monkeypatch):
    entry = record("bad")
    entry["weights"]["file"] = "../x"
    write_record(tmp_path, entry)
    refused = {}
    with pytest.warns(UserWarning):
        presets = zoo._read_presets(str(tmp_path), refused)
    monkeypatch.setattr(zoo, "PRESETS", presets)
    monkeypatch.setattr(zoo, "REFUSED", refused)
    assert zoo.list() == []
    with pytest.raises(GanZooError, match=r"bad\.json: weights\.file must be a bare file name") as error:
        zoo.load("bad")
    assert "\n" not in str(error.value)


def test_the_published_records_are_all_valid():
    names = sorted(f[: -len(".json")] for f in os.listdir(zoo.PRESET_DIR) if f.endswith(".json"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sorted(zoo._read_presets()) == names
    assert zoo.REFUSED == {} and zoo.list() == names


# ------------------------------------------------------------------ downloads
@pytest.fixture
def url_record(tmp_path, monkeypatch):
    """Preset `tiny` whose weights are only at a file:// URL (served bytes match its sha256)."""
    served = tmp_path / "served" / "tiny.weights.h5"
    served.parent.mkdir()
    served.write_bytes(b"the published weights")
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", str(tmp_path / "no_weights_here"))
    monkeypatch.setitem(zoo.PRESETS, "tiny", record("tiny", url=served.as_uri()))
    return served, tmp_path / "keras_home"


def cache_listing(cache):
    folder = cache / zoo.CACHE_SUBDIR
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def test_a_verified_download_lands_in_the_cache(url_record):
    served, cache = url_record
    path = zoo.weights_file("tiny", cache_dir=str(cache))
    assert path == str(cache / zoo.CACHE_SUBDIR / "tiny.weights.h5")
    assert open(path, "rb").read() == b"the published weights"
    assert cache_listing(cache) == ["tiny.weights.h5"]  # no temporary file left behind
    served.unlink()
    assert zoo.weights_file("tiny", cache_dir=str(cache)) == path  # no second download


def test_a_mismatched_download_removes_only_its_own_temporary_file(url_record):
    """A file already in the cache under the preset's name (here: not the published one) is the
    user's business: a bad download does not remove it, only the download itself goes."""
    served, cache = url_record
    kept = cache / zoo.CACHE_SUBDIR / "tiny.weights.h5"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"an older file")
    served.write_bytes(b"not the published weights")
    with pytest.raises(GanZooError, match=r"downloaded for preset 'tiny'.*sha256 mismatch.*download was deleted"):
        zoo.weights_file("tiny", cache_dir=str(cache))
    assert kept.read_bytes() == b"an older file"
    assert cache_listing(cache) == ["tiny.weights.h5"]


def test_a_good_download_replaces_a_stale_cached_copy(url_record):
    served, cache = url_record
    stale = cache / zoo.CACHE_SUBDIR / "tiny.weights.h5"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an older file")
    assert open(zoo.weights_file("tiny", cache_dir=str(cache)), "rb").read() == b"the published weights"
    assert cache_listing(cache) == ["tiny.weights.h5"]


def test_a_value_error_of_get_file_is_not_called_a_checksum_mismatch(url_record, monkeypatch):
    import keras

    served, cache = url_record

    def refuses(fname=None, origin=None, **kwargs):
        raise ValueError(f"Paths are no longer accepted as the `fname` argument. Received: fname={fname}")

    monkeypatch.setattr(keras.utils, "get_file", refuses)
    with pytest.raises(GanZooError) as error:
        zoo.weights_file("tiny", cache_dir=str(cache))
    message = str(error.value)
    assert message.startswith("cannot fetch the weights of preset 'tiny'") and "sha256" not in message
    assert "\n" not in message and cache_listing(cache) == []


def test_get_file_is_asked_for_a_fresh_name_inside_the_cache(url_record, monkeypatch):
    """Keras writes nowhere but a new temporary name in the zoo's cache folder."""
    import keras

    served, cache = url_record
    calls = []
    real = keras.utils.get_file

    def spy(fname=None, origin=None, **kwargs):
        calls.append((fname, kwargs))
        return real(fname, origin=origin, **kwargs)

    monkeypatch.setattr(keras.utils, "get_file", spy)
    zoo.weights_file("tiny", cache_dir=str(cache))
    (fname, kwargs), = calls
    assert os.sep not in fname and fname != "tiny.weights.h5" and fname.startswith(".tiny.weights.h5.")
    assert os.path.join(kwargs["cache_dir"], kwargs["cache_subdir"]) == str(cache / zoo.CACHE_SUBDIR)
