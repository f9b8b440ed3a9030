"""Amazon seller Account Health metrics computed from the raw Seller Central exports.

The public API notebooks use: `account_health` (every metric of a folder on a day), `settings`
(`build` one run's settings), `render` (a report), `Explorer` and `SpikeExplorer` (the
notebooks' explorers). Each is imported on first use, so importing one module of the package loads only what it needs.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("amazon-account-health")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

_LAZY = {
    "account_health": ("analysis.metrics.health", "account_health"),
    "render": ("analysis.report.render", "render"),
    "Settings": ("analysis.metrics.settings", "Settings"),
    "build_settings": ("analysis.metrics.settings", "build"),
    "Explorer": ("analysis.explore.explorer", "Explorer"),
    "SpikeExplorer": ("analysis.explore.spike_explorer", "SpikeExplorer"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
