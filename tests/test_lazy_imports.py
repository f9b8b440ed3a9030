"""altair (~1.5 s to import) is imported only when a chart is drawn: a fleet run's main process
and its workers computing metrics only never import it (`analysis.report.lazy`)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from analysis import config


def _python(code: str) -> dict:
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=config.PROJ_ROOT,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_lazy_module_is_imported_at_its_first_attribute_once_from_many_threads():
    got = _python(
        """
        import json, sys, threading
        from analysis.report import lazy
        w = lazy.module("wave")
        before = "wave" in sys.modules
        seen = []
        threads = [threading.Thread(target=lambda: seen.append(w.Error)) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        import wave
        try:
            w.no_such_name
            missing = False
        except AttributeError:
            missing = True
        import pickle
        print(json.dumps({"before": before, "after": "wave" in sys.modules,
                          "same": all(s is wave.Error for s in seen) and len(seen) == 8, "missing": missing,
                          "pickled": pickle.loads(pickle.dumps(w)) is wave}))
        """
    )
    assert got == {"before": False, "after": True, "same": True, "missing": True, "pickled": True}


def test_fleet_metrics_import_no_altair_and_a_report_does(tmp_path):
    """The fleet's main process and a worker's metrics-only task leave altair unimported; the
    report's sections still draw their charts with it."""
    got = _python(
        f"""
        import json, os, sys
        os.environ["AH_CACHE_DIR"] = {str(tmp_path / "cache")!r}
        from analysis.fleet import run, task
        from analysis.metrics.settings import Settings
        row = task.process(task.Job(name="sample", data={str(config.SAMPLE_DIR)!r},
                                    settings=Settings().to_dict(), period="2026-W46"))
        after_task = "altair" in sys.modules
        from analysis.report import charts
        import polars as pl
        chart = charts.rate_trend(pl.DataFrame({{"week": ["2026-11-15"], "rate": [0.01]}}),
                                  title="t", target=0.01)
        print(json.dumps({{"status": row["status"], "after_task": after_task,
                          "chart": type(chart).__module__.split(".")[0]}}))
        """
    )
    assert got == {"status": "ok", "after_task": False, "chart": "altair"}
