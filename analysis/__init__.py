"""Amazon seller Account Health metrics computed from the raw Seller Central exports.

The public API notebooks use: `account_health` (every metric of a folder on a day), `settings`
(`build` one run's settings), `render` (a report), `Explorer` and `SpikeExplorer` (the
notebooks' explorers). The heavier ones are imported on first use.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("amazon-account-health")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

from analysis.health import account_health  # noqa: E402

_LAZY = {
    "render": ("analysis.reports", "render"),
    "Settings": ("analysis.settings", "Settings"),
    "build_settings": ("analysis.settings", "build"),
    "Explorer": ("analysis.explorer", "Explorer"),
    "SpikeExplorer": ("analysis.spike_views", "SpikeExplorer"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


__all__ = ["__version__", "account_health", *_LAZY]
