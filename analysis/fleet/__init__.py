"""Every account of an agency in one run: the accounts file (accounts), the work done for one
account on a Dask worker (task), the run over all of them (run) and the page that shows which
account needs help first (page)."""
