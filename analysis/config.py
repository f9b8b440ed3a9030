"""Every path the suite uses, in one place (notebooks and the CLI never spell a path literally)."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJ_ROOT = PACKAGE_DIR.parent
DATA_DIR = PROJ_ROOT / "data"
SAMPLE_DIR = DATA_DIR / "sample"
NOTEBOOKS_DIR = PROJ_ROOT / "notebooks"
REPORTS_DIR = PROJ_ROOT / "reports"
TEMPLATES_DIR = PACKAGE_DIR / "templates"
SCHEMA_FILE = PACKAGE_DIR / "schema" / "account-health-report-2020-11-18.schema.json"

METRICS_SUMMARY_NOTEBOOK = NOTEBOOKS_DIR / "metrics_summary.ipynb"

# The sample account ends on this day (a generator default, so the sample and its report are
# reproducible whatever today's date is).
SAMPLE_END_DATE = "2026-11-15"
SAMPLE_SEED = 20261115
