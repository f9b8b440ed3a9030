"""The suite's errors: one hierarchy, so the CLI catches only ours (anything else is a bug and
keeps its traceback)."""

# what a command says when Ctrl-C stops it (exit 130), from its handler in `cli.main` or, during
# the imports before that handler exists, in `__main__`
INTERRUPTED = "interrupted: the command stopped before it finished."


INTERRUPTED_EXIT = 130  # the exit status of a command stopped by Ctrl-C


def interrupted() -> int:
    """Say INTERRUPTED and ignore further Ctrl-C while the process shuts down (a second
    KeyboardInterrupt during shutdown would kill it by the signal, not exit 130)."""
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(INTERRUPTED, file=sys.stderr)
    return INTERRUPTED_EXIT


def exit_interrupted() -> None:
    """End the process with INTERRUPTED_EXIT after its exit handlers (temporary files) ran.
    Not by SystemExit: when the Ctrl-C came while code made from a string ran (a dataclass or a
    named tuple being defined by an import, a notebook cell), CPython marks the KeyboardInterrupt
    "unhandled" although it was caught, and at a normal exit kills itself with SIGINT instead
    (a parent sees -2, not 130; seen now and then in the Ctrl-C test)."""
    import atexit
    import contextlib
    import os
    import sys

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(INTERRUPTED_EXIT)


class AnalysisError(Exception):
    """A problem the user can fix; the message is one sentence that says what to do."""


class DataError(AnalysisError):
    """The data folder cannot give what was asked (missing, unreadable or unusable files)."""


class SettingsError(AnalysisError):
    """A settings file or override names something unknown or holds a bad value."""


class PeriodError(AnalysisError):
    """The period or as-of day asked for is not covered by the data."""


class UsageError(AnalysisError):
    """Arguments that do not fit together or name nothing known."""
