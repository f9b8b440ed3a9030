import sys

from analysis.errors import exit_interrupted, interrupted

try:
    from analysis.cli import entry
except KeyboardInterrupt:  # Ctrl-C during the imports, before the command's own handler exists
    if "--debug" in sys.argv:
        raise
    interrupted()
    exit_interrupted()
entry()
