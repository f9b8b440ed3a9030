"""Defects by cause: classifier, removal triage, roll-off arithmetic, shrinkage, the CLI."""

import datetime as dt
import json
import subprocess
import sys

import polars as pl
import pytest

from analysis.inputs import sample, sources
from analysis.insights import causes, defects, rolloff, triage
from analysis.metrics.definitions import METRICS
from analysis.metrics.settings import Settings


@pytest.mark.parametrize(
    ("comment", "cause"),
    [
        ("Never arrived, tracking says delivered.", "not_received"),
        ("Arrived two weeks late.", "late"),
        ("Box was crushed and the lamp was broken.", "damaged"),
        ("Not as described, the listing says aluminium.", "not_as_described"),
        ("Wrong item: I ordered black and got white.", "wrong_item"),
        ("Seller never answered my emails, rude.", "customer_service"),
        ("Cheap plastic, stopped working after a day.", "product_quality"),
        ("Meh.", "other"),
        ("Paket ist nie angekommen!", "not_received"),
        ("Lieferung kam viel zu spät.", "late"),
        ("Die Lampe war beschädigt und kaputt.", "damaged"),
        ("Falscher Artikel geliefert.", "wrong_item"),
        ("Entspricht nicht der Beschreibung.", "not_as_described"),
        ("Verkäufer gibt keine Antwort.", "customer_service"),
        ("Schlechte Qualität, funktioniert nicht.", "product_quality"),
        ("Colis jamais reçu.", "not_received"),
        ("Livraison en retard de dix jours.", "late"),
        ("Produit arrivé cassé.", "damaged"),
        ("Mauvais article envoyé.", "wrong_item"),
        ("Pas conforme à la description.", "not_as_described"),
        ("Aucune réponse du vendeur.", "customer_service"),
        ("Mauvaise qualité, ne fonctionne pas.", "product_quality"),
    ],
)
def test_cause_classifier(comment, cause):
    c = causes.classify(comment)
    assert c.cause == cause
    assert (c.words == ()) == (cause == "other")


def test_classifier_says_which_words():
    c = causes.classify("Arrived late and the box was crushed")
    assert c.cause == "damaged" and c.words == ("crushed",) and set(c.all_causes) == {"damaged", "late"}
    assert "plate" not in causes.classify("a plate").all_causes  # word boundaries: no 'late' in 'plate'
    assert causes.classify("a plate").cause == "other"


def test_words_of_every_cause_in_cause_order():
    """The words shown beside a verdict: every cause's phrases, in cause order, each once across
    causes, from the same pass that classifies."""
    text = "Arrived late and the box was crushed, never arrived at all"
    c, words = causes.analyse(text)
    assert c == causes.classify(text)
    assert words == causes.classify_words(text) == ["never arrived", "crushed", "late"]
    v = triage.verdict("Arrived late, box crushed", "AFN", None, None)
    assert v[2] == "crushed, late"
    assert triage.verdict("Late. Really late, and late again", "AFN", None, None)[2] == "late"  # not 3 times


def test_claim_and_return_reasons():
    assert causes.claim_cause("not-received") == "not_received"
    assert causes.claim_cause("refund-not-issued") == "customer_service"
    assert causes.return_cause("DAMAGED_BY_CARRIER") == "damaged"
    assert causes.return_cause("defective") == "product_quality"
    assert causes.return_cause("UNWANTED_ITEM") == "other"


def test_fold_of_plain_text_is_the_full_fold():
    """ASCII text takes a shortcut (lower case): it folds as decomposing and dropping accents does."""
    import random
    import unicodedata

    def full(text: str) -> str:
        norm = unicodedata.normalize("NFKD", text.casefold())
        return (
            "".join(c for c in norm if not unicodedata.combining(c)).replace("\u2019", "'").replace("ß", "ss")
        )

    rnd = random.Random(7)
    texts = ["".join(chr(i) for i in range(128)), "DAMAGED Box, Late!", ""]
    texts += ["".join(chr(rnd.randrange(128)) for _ in range(rnd.randrange(40))) for _ in range(2000)]
    for text in texts:
        assert causes.fold(text) == full(text)
    assert causes.fold("Beschädigt STRASSE straße") == "beschadigt strasse strasse"
    assert causes.fold("didn\u2019t arrive") == "didn't arrive"


@pytest.mark.parametrize(
    ("comment", "channel", "on_time", "buy", "verdict", "rule_part"),
    [
        ("This is shit, never again", "MFN", True, True, triage.REMOVABLE, "obscene"),
        ("Call me at +1 555 123 4567 please", "MFN", True, True, triage.REMOVABLE, "personal information"),
        ("Write to jane.doe@example.com", "AFN", None, None, triage.REMOVABLE, "personal information"),
        ("Poor quality, stopped working.", "MFN", False, False, triage.REMOVABLE, "product review"),
        ("Poor quality and the seller never answered.", "MFN", True, True, triage.NOT_REMOVABLE, "mixes"),
        ("Arrived late and crushed.", "AFN", None, None, triage.STRIKE, "FBA order"),
        ("Arrived late and crushed.", "MFN", True, True, triage.NOT_REMOVABLE, "only the buyer"),
        ("Never arrived.", "MFN", True, True, triage.STRIKE, "Buy Shipping"),
        ("Never arrived.", "MFN", True, False, triage.NOT_REMOVABLE, "only the buyer"),
        ("Never arrived.", "MFN", True, None, triage.STRIKE_IF_BUY_SHIPPING, "shipped on time"),
        ("Took far longer than promised.", "MFN", False, True, triage.NOT_REMOVABLE, "shipped late"),
        ("Seller was rude.", "AFN", None, None, triage.NOT_REMOVABLE, "only the buyer"),
    ],
)
def test_removal_rules(comment, channel, on_time, buy, verdict, rule_part):
    v, rule, words = triage.verdict(comment, channel, on_time, buy)
    assert v == verdict and rule_part in rule
    if v != triage.NOT_REMOVABLE or "mixes" in rule:
        assert words


def test_triage_deadline_and_what_if(account):
    a = account
    for i in range(50):
        a.order(f"O{i:02d}", "2026-05-01")
    a.feedback("O01", "5/10/26", 1, comment="Stopped working, poor quality.")  # removable
    a.feedback("O02", "5/11/26", 1, comment="Seller was rude.")  # stays
    data = sources.load(a.write())
    t = triage.triage(data, dt.date(2026, 6, 30)).sort("order_id")
    assert t["request_by"].to_list() == [dt.date(2026, 8, 8), dt.date(2026, 8, 9)]
    assert t["days_left"].to_list() == [39, 40]
    w = triage.what_if(data, dt.date(2026, 6, 30), METRICS).filter(pl.col("channel") == "AFN")
    assert dict(zip(w["scenario"], w["defects"], strict=True)) == {"now": 2, "if removed": 1}
    late = triage.triage(data, dt.date(2026, 8, 9)).sort("order_id")
    assert late["expired"].to_list() == [True, False]


@pytest.mark.parametrize(
    ("k", "n", "needed"), [(0, 10, 0), (1, 50, 51), (1, 100, 1), (1, 101, 0), (3, 250, 51), (5, 500, 1)]
)
def test_orders_needed(k, n, needed):
    """k defects need more than 100 k orders in the window to be under 1 %."""
    assert defects.orders_needed(k, n, 0.01) == needed
    if k:
        assert k / (n + needed) < 0.01 and (needed == 0 or k / (n + needed - 1) >= 0.01)


def test_rolloff_dates_and_rising_rate(account):
    """20 orders a day for 90 days, one defect bought on 20 May: it leaves on 3 August
    (20 May + 15 lag + 60 window); at half volume the projected rate rises before that."""
    a = account
    day = dt.date(2026, 4, 1)
    while day <= dt.date(2026, 6, 29):
        for i in range(20):
            a.order(f"{day:%m%d}-{i:02d}", day.isoformat())
        day += dt.timedelta(days=1)
    a.feedback("0520-00", "5/25/26", 1)
    data = sources.load(a.write())
    as_of = dt.date(2026, 6, 29)
    cal = rolloff.calendar(data, as_of, METRICS)
    assert cal["leaves_window"].to_list() == [dt.date(2026, 8, 3)] and cal["days_left"].to_list() == [35]
    f = rolloff.forecast(data, as_of, METRICS).filter(pl.col("channel") == "AFN")
    recent = f.filter(pl.col("scenario") == rolloff.RECENT)
    low = f.filter(pl.col("scenario") == rolloff.LOW)
    at = lambda fr, d: fr.filter(pl.col("day") == d).row(0, named=True)  # noqa: E731
    assert at(recent, as_of)["rate"] == pytest.approx(1 / 1200)
    assert at(recent, dt.date(2026, 7, 30))["rate"] == pytest.approx(1 / 1200)
    # 30 July: window [17 May, 15 July], its last 16 days projected at 10 orders a day
    assert at(low, dt.date(2026, 7, 30))["orders"] == pytest.approx(1200 - 16 * 10)
    assert at(low, dt.date(2026, 7, 30))["rate"] > at(low, as_of)["rate"]  # less volume, same defect
    assert at(recent, dt.date(2026, 8, 2))["defects"] == 1 and at(recent, dt.date(2026, 8, 3))["defects"] == 0


def test_shrinkage_ordering():
    df = pl.DataFrame(
        {
            "value": ["tiny", "big-bad", "big-good", "mid"],
            "defects": [1, 30, 2, 3],
            "orders": [2, 1000, 1000, 300],
        }
    )
    out = defects.shrink(df).sort("shrunk_rate", descending=True)
    assert out["value"][0] == "big-bad"  # 30 in 1000 beats 1 in 2
    assert out.filter(pl.col("value") == "tiny")["shrunk_rate"][0] < 0.5
    raw_top = df.sort(pl.col("defects") / pl.col("orders"), descending=True)["value"][0]
    assert raw_top == "tiny"


def test_defects_cli_names_the_bad_sku_and_carrier(sample_dir):
    m = sample.manifest(sample_dir)
    bad_sku = next(s["sku"] for s in m["spikes"] if s["kind"] == "sku")
    bad_carrier = next(s["carrier"] for s in m["spikes"] if s["kind"] == "carrier")
    for by, expected in (("sku", bad_sku), ("carrier", bad_carrier)):
        r = subprocess.run(
            [sys.executable, "-m", "analysis", "defects", "--data", str(sample_dir), "--as-of", "2026-11-15", "--by", by, "--format", "json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)[0]["value"] == expected


def test_defect_table_rows(sample_data):
    t = defects.defect_table(sample_data, dt.date(2026, 11, 15))
    assert set(t["defect_kind"]) == {"negative_feedback", "claim", "chargeback", "return"}
    assert (
        t.filter(pl.col("counts_toward_odr"))["why_not_counted"].null_count()
        == t.filter(pl.col("counts_toward_odr")).height
    )
    reasons = set(t["why_not_counted"].drop_nulls())
    assert {
        "returns are not ODR defects",
        "feedback removed by Amazon",
        "claim denied",
        "fraud chargeback",
    } <= reasons
    assert t["defect_date"].max() <= dt.date(2026, 11, 15)


def test_explorer_widget_change_updates_the_drilldown(sample_data):
    from analysis.explore.explorer import Explorer

    ex = Explorer(sample_data, dt.date(2026, 11, 15), Settings())
    ex.widget()
    before = ex.current["drilldown"]
    assert before.count("<tr>") > 20
    ex.controls["cause"].value = "not_received"  # the widget's observer runs the callback
    after = ex.current["drilldown"]
    assert after != before and 1 < after.count("<tr>") < before.count("<tr>")
    assert set(ex.filtered()["cause"]) == {"not_received"}
    ex.controls["sku"].value = "HUB-7"
    assert all("HUB-7" in s for s in ex.filtered()["skus"])


def test_rolloff_forecast_with_a_year_long_window(sample_data, tmp_path):
    """A valid setting (FBA's window and lag of 365 days) puts FBA's window before the sample's
    first order: its rows, first, have no rate (more of them than polars infers a type from), the
    seller-fulfilled rows after them do. The columns are typed, not inferred, so the report renders
    instead of failing in its roll-off cell."""
    from analysis.metrics import settings as st

    path = tmp_path / "long.toml"
    path.write_text("[orderDefectRate.afn]\nwindow_days = 365\nlag_days = 365\n")
    defs = st.build(path).metrics
    f = rolloff.forecast(sample_data, dt.date(2026, 11, 15), defs)
    assert f.schema["rate"] == pl.Float64 and f.schema["orders"] == pl.Float64
    afn, mfn = (f.filter(pl.col("channel") == ch)["rate"] for ch in ("AFN", "MFN"))
    assert afn.null_count() == afn.len() > 100 and mfn.drop_nulls().len() > 0
    assert rolloff.summary(sample_data, dt.date(2026, 11, 15), defs).height > 0
