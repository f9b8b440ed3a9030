import nbformat as nbf

nb = nbf.v4.new_notebook()
cells = []
intro = nbf.v4.new_markdown_cell(
    "# Weekly Account Health metrics summary\n\nRun it from JupyterLab (`make lab`) to explore, or through `python -m analysis report`, which injects the parameters below and exports HTML with the code hidden. All logic lives in `analysis.report` (context, sections, defect_sections)."
)
intro.metadata["tags"] = ["report-hide"]
cells.append(intro)
p = nbf.v4.new_code_cell(
    '# Parameters (papermill injects the real values after this cell)\ndata_dir = None  # folder of exports; None means the sample account\nperiod = None  # ISO week "2026-W46" or month "2026-10"; None means the latest complete week\nweek = None  # a week, as in older runs (period wins)\nas_of = None  # or an as-of date "YYYY-MM-DD"\nmarketplace = "all"  # a marketplace id, or "all"\naccount = None  # shown in the header; None means the data folder name\ninteractive = True  # False in report runs: offline charts, static output\nsettings = None  # the run\'s settings (Settings.to_dict()), as `python -m analysis report` passes them\nconfig_file = None  # opened by hand: a TOML settings file (None: the defaults)'
)
p.metadata["tags"] = ["parameters"]
cells.append(p)
cells.append(
    nbf.v4.new_code_cell("""import warnings

from IPython.display import HTML, display

from analysis import config
from analysis.report import amazon, charts, context, defect_sections, render, sections, summary

warnings.filterwarnings("ignore")
if not interactive:
    charts.use_offline_renderer()
data_dir = data_dir or str(config.SAMPLE_DIR)
period = period or week or (None if as_of else render.default_week(data_dir))
run = context.run_settings(settings, config_file)
ctx = context.prepare(data_dir, run, as_of=as_of, marketplace=marketplace, account=account, period=period)
display(HTML(sections.header_html(ctx) + summary.first_screen_html(ctx)))""")
)
cells.append(nbf.v4.new_code_cell("display(HTML(sections.odr_scorecard_html(ctx)))"))
cells.append(nbf.v4.new_code_cell("display(sections.odr_trend_chart(ctx))"))
cells.append(
    nbf.v4.new_code_cell("display(HTML(summary.escalation_html(ctx) + summary.feedback_summary_html(ctx)))")
)
cells.append(nbf.v4.new_markdown_cell("## Full scorecard per marketplace"))
cells.append(
    nbf.v4.new_code_cell("""trend = sections.metric_trend(ctx)
for mkt in ctx.marketplaces:
    display(HTML(sections.scorecard_html(ctx, mkt)))
    display(sections.metric_trend_chart(ctx, mkt, trend))""")
)
cells.append(nbf.v4.new_code_cell("display(HTML(amazon.amazon_history_html(ctx)))"))
cells.append(
    nbf.v4.new_code_cell("""amazon_chart = amazon.amazon_history_chart(ctx)
if amazon_chart:
    display(amazon_chart)
display(HTML(amazon.warnings_html(ctx) + amazon.reconciliation_html(ctx)))""")
)
cells.append(nbf.v4.new_code_cell("display(HTML(defect_sections.spikes_html(ctx)))"))
cells.append(nbf.v4.new_code_cell("display(HTML(defect_sections.what_caused_it_html(ctx)))"))
cells.append(nbf.v4.new_code_cell("display(HTML(defect_sections.rolloff_summary_html(ctx)))"))
cells.append(nbf.v4.new_code_cell("defect_sections.rolloff_chart(ctx)"))
cells.append(nbf.v4.new_code_cell("display(HTML(defect_sections.removal_candidates_html(ctx)))"))
cells.append(nbf.v4.new_code_cell("display(HTML(defect_sections.defective_orders_html(ctx)))"))
cells.append(nbf.v4.new_code_cell("display(HTML(sections.data_quality_html(ctx)))"))
cells.append(nbf.v4.new_code_cell("display(HTML(sections.footer_html(ctx)))"))
head = nbf.v4.new_code_cell("display({render.HEADLINE_MIME: sections.headline(ctx)}, raw=True)")
head.metadata["tags"] = ["report-hide"]
cells.append(head)
nb.cells = cells
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["language_info"] = {"name": "python"}
for i, c in enumerate(nb.cells):
    c["id"] = f"cell-{i}"
nbf.write(nb, "notebooks/metrics_summary.ipynb")

# ---------------------------------------------------------------- the two explorer notebooks
EXPLORER_PARAMETERS = (
    "# Parameters\ndata_dir = None  # folder of exports; None means the sample account\n"
    'as_of = None  # "YYYY-MM-DD"; None means the newest order day\ninteractive = True  # False for static reports\n'
    "settings = None  # the run's settings (Settings.to_dict()) when rendered by the suite\n"
    "config_file = None  # opened by hand: a TOML settings file (None: the defaults)"
)
EXPLORER_SETUP = """import datetime as dt

from IPython.display import display

from analysis import config
from analysis.report import charts
from analysis.metrics import health
from analysis.inputs import sources
from analysis.report.context import run_settings
from analysis.{module} import {cls}

if not interactive:
    charts.use_offline_renderer()
run = run_settings(settings, config_file)
data = sources.load(data_dir or config.SAMPLE_DIR)
day = dt.date.fromisoformat(as_of) if as_of else health.newest_order_day(data)
health.require_covered(data, day, run)
{var} = {cls}(data, day, {args}interactive=interactive)"""


def explorer_notebook(path: str, intro: str, usage: str, module: str, cls: str, var: str, args: str) -> None:
    """A thin notebook: what it shows, how to use it live (hidden from rendered pages), parameters,
    one `analysis` explorer object, and its widget or static views."""
    nb = nbf.v4.new_notebook()
    params = nbf.v4.new_code_cell(EXPLORER_PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    how = nbf.v4.new_markdown_cell(usage)
    how.metadata["tags"] = ["report-hide"]
    nb.cells = [
        nbf.v4.new_markdown_cell(intro),
        how,
        params,
        nbf.v4.new_code_cell(EXPLORER_SETUP.format(module=module, cls=cls, var=var, args=args)),
        nbf.v4.new_code_cell(f"display({var}.widget()) if interactive else {var}.show_static()"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i}"
    nbf.write(nb, path)


explorer_notebook(
    "notebooks/defects_by_cause.ipynb",
    "# Defects by cause\n\nWhich orders, SKUs, carriers and causes drive the Order Defect Rate; which negative "
    "feedback can be removed; when each defect leaves the window; and what the rate would be with another "
    "target, window, volume or removal requests granted.",
    "Run all cells, then click a bar (a cause, a SKU, a carrier) to filter the other charts and the orders "
    "below them (double-click a chart to clear its selection), drag across the weekly chart to set the purchase "
    "dates, and move the what-if sliders (target, window, daily volume, removal requests). Marketplace and "
    "channel are dropdowns. Under papermill (`interactive = False`, `python -m analysis render`) the same views "
    "are drawn once, statically, for the ODR window.",
    "explore.explorer",
    "Explorer",
    "explorer",
    "run, ",
)
explorer_notebook(
    "notebooks/spike_detection.ipynb",
    "# Spike detection\n\nControl charts of the defects arriving each day against the account's own baseline at "
    "its volume, with the alarms of the GLR (moving-window likelihood ratio), CUSUM, p-chart, EWMA and Laney "
    "detectors, the incidents, and defects by order day beside their nowcast. Defaults and their measured "
    "performance: the README's spike detection section.",
    "Run all cells, pick a series, a detector and its sensitivity, then click an alarm or an incident's band (or "
    "drag across days) to list the defects behind it and what drove them. Under papermill (`interactive = "
    "False`, `python -m analysis render`) every series is drawn with every detector's alarms.",
    "explore.spike_explorer",
    "SpikeExplorer",
    "spike_explorer",
    "run, ",
)
