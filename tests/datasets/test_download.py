"""The real download code against an HTTP server on 127.0.0.1 serving archives we build."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest

from maskrec.datasets import MovieLensDataset
from maskrec.datasets import download as dl
from maskrec.datasets.download import DownloadError, fetch_release
from tests.conftest import write_csv_layout


def _zip_folder(folder: Path, top: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{top}/{path.name}")
    return buffer.getvalue()


class _Server:
    """Serves `files` (name -> bytes); names in `truncate` send half the body and hang up."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                name = self.path.rsplit("/", 1)[-1]
                outer.requests.append(name)
                body = outer.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(
                    body[: len(body) // 2] if name in outer.truncate else body
                )
                if name in outer.truncate:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/movielens"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = _Server()
    yield srv
    srv.close()


@pytest.fixture
def release_zip(tmp_path) -> bytes:
    return _zip_folder(write_csv_layout(tmp_path / "src"), "ml-latest-small")


def test_download_verifies_extracts_and_caches(
    server, release_zip, tmp_path, monkeypatch
):
    # ml-latest-small has no pinned checksum: the published .md5 file is used.
    server.files["ml-latest-small.zip"] = release_zip
    server.files["ml-latest-small.zip.md5"] = (
        f"{hashlib.md5(release_zip).hexdigest()}  ml-latest-small.zip\n".encode()
    )
    cache = tmp_path / "cache"

    folder = fetch_release("ml-latest-small", cache, base_url=server.url)
    assert folder == cache / "ml-latest-small"
    assert (folder / "ratings.csv").is_file() and (
        folder / dl.COMPLETE_MARKER
    ).is_file()
    assert sorted(p.name for p in cache.iterdir()) == [
        "ml-latest-small"
    ]  # no temp files left

    # A second call trusts the cache and does not touch the network.
    server.requests.clear()
    fetch_release("ml-latest-small", cache, base_url=server.url)
    assert server.requests == []

    # And the catalog dataset reads it as any other release.
    monkeypatch.setenv("MASKREC_MOVIELENS_URL", server.url)
    data = MovieLensDataset(source="ml-latest-small", cache_dir=str(cache)).load()
    assert (
        len(data["interactions"]) == 5 and data["source"]["layout"] == "movielens-csv"
    )


def test_pinned_checksum_mismatch_leaves_nothing_behind(
    server, release_zip, tmp_path, monkeypatch
):
    monkeypatch.setitem(dl.RELEASES, "ml-100k", dl.Release("ml-100k", "0" * 32))
    server.files["ml-100k.zip"] = release_zip
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="does not match the published 0000"):
        fetch_release("ml-100k", cache, base_url=server.url)
    assert list(cache.iterdir()) == []


def test_interrupted_transfer_raises_and_leaves_nothing_behind(
    server, release_zip, tmp_path
):
    server.files["ml-latest-small.zip"] = release_zip
    server.files["ml-latest-small.zip.md5"] = (
        hashlib.md5(release_zip).hexdigest().encode()
    )
    server.truncate.add("ml-latest-small.zip")
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="ml-latest-small.zip"):
        fetch_release("ml-latest-small", cache, base_url=server.url)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize(
    "member", ["../evil.txt", "/abs/evil.txt", "ml-latest-small/../../evil.txt"]
)
def test_unsafe_archive_is_refused(server, tmp_path, member):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ml-latest-small/ratings.csv", "userId,movieId,rating,timestamp\n")
        zf.writestr(member, "owned")
    body = buffer.getvalue()
    server.files["ml-latest-small.zip"] = body
    server.files["ml-latest-small.zip.md5"] = hashlib.md5(body).hexdigest().encode()
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(DownloadError, match="unsafe member path|escapes"):
        fetch_release("ml-latest-small", cache, base_url=server.url)
    assert list(cache.iterdir()) == []
    assert not list(tmp_path.rglob("evil.txt"))


def test_folder_without_marker_is_fetched_again(server, release_zip, tmp_path):
    server.files["ml-latest-small.zip"] = release_zip
    server.files["ml-latest-small.zip.md5"] = (
        hashlib.md5(release_zip).hexdigest().encode()
    )
    half = tmp_path / "cache" / "ml-latest-small"
    half.mkdir(parents=True)
    (half / "ratings.csv").write_text("half a file")
    folder = fetch_release("ml-latest-small", tmp_path / "cache", base_url=server.url)
    assert (folder / dl.COMPLETE_MARKER).is_file()
    assert (folder / "ratings.csv").read_text().startswith("userId")


def test_missing_published_checksum_is_an_error(server, release_zip, tmp_path):
    server.files["ml-latest-small.zip"] = release_zip
    with pytest.raises(DownloadError, match=r"\.md5: HTTP 404"):
        fetch_release("ml-latest-small", tmp_path / "cache", base_url=server.url)


def test_unknown_source_is_explained(tmp_path):
    with pytest.raises(Exception, match="neither 'sample', a known release"):
        MovieLensDataset(source=str(tmp_path / "nope"), cache_dir=str(tmp_path)).load()
