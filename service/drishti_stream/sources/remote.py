"""gs:// and http(s):// videos: downloaded once into the cache directory, then read as local files."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import httpx

from drishti_stream.sources.base import SourceError

if TYPE_CHECKING:
    from google.cloud import storage

DOWNLOAD_TIMEOUT_S = 60.0


def cached_path(url: str, cache_dir: Path) -> Path:
    """Where a URL's download lives: one file per URL, named so a person can tell which."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    return cache_dir / "videos" / f"{digest}-{Path(urlparse(url).path).name or 'video'}"


def _download_once(url: str, cache_dir: Path, write: Callable[[Path], None]) -> Path:
    target = cached_path(url, cache_dir)
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(f"{url}: cannot create cache directory {target.parent}: {exc.strerror}") from None
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    os.close(fd)
    try:
        write(Path(partial))
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return target


def fetch_http(url: str, cache_dir: Path) -> Path:
    """Downloads an http(s) URL (following redirects) unless it is cached already."""

    def write(partial: Path) -> None:
        try:
            with httpx.stream("GET", url, follow_redirects=True, timeout=DOWNLOAD_TIMEOUT_S) as response:
                if response.status_code != 200:
                    raise SourceError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise SourceError(f"{url}: download failed: {exc}") from None

    return _download_once(url, cache_dir, write)


def _storage_client(endpoint: str | None) -> storage.Client:
    """Google's API with application default credentials, anonymous when there are none (public buckets);
    another endpoint (an emulator's) anonymously, as emulators expect.

    The client library is imported here, for gs:// videos only: it adds some 30 MB to every camera that
    imports it."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    if endpoint:
        return storage.Client(client_options={"api_endpoint": endpoint}, use_auth_w_custom_endpoint=False)
    try:
        return storage.Client()
    except DefaultCredentialsError:
        return storage.Client.create_anonymous_client()


def fetch_gcs(url: str, cache_dir: Path, endpoint: str | None = None) -> Path:
    """Downloads gs://bucket/object with google-cloud-storage, from ``endpoint`` (an emulator's, say) when
    given; else from Google, or STORAGE_EMULATOR_HOST when that is set."""
    parsed = urlparse(url)
    bucket_name, object_name = parsed.netloc, parsed.path.lstrip("/")
    if not bucket_name or not object_name:
        raise SourceError(f"{url}: expected gs://BUCKET/OBJECT")

    def write(partial: Path) -> None:
        from google.api_core import exceptions as gcloud_errors

        try:
            _storage_client(endpoint).bucket(bucket_name).blob(object_name).download_to_filename(str(partial))
        except gcloud_errors.NotFound:
            raise SourceError(f"{url}: bucket or object not found") from None
        except gcloud_errors.GoogleAPICallError as exc:
            raise SourceError(f"{url}: download failed: {exc.message}") from None

    return _download_once(url, cache_dir, write)
