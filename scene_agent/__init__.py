"""scene-agent: tells you when a camera's scene no longer looks like the reference you chose."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scene-agent")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
