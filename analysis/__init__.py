"""Amazon seller Account Health metrics computed from the raw Seller Central exports."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("amazon-account-health")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

from analysis.health import account_health  # noqa: E402

__all__ = ["__version__", "account_health"]
