"""DrishtiStream: a video replayed as a live camera, frame-exact on the wall clock."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("drishti-stream")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
