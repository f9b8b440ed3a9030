"""Writes the messy-export test corpus (one small file per problem). Run it to regenerate:

    .venv/bin/python tests/corpus/make_corpus.py

The files are committed; tests/test_corpus.py says what each must give.
"""

import gzip
from pathlib import Path

HERE = Path(__file__).parent
H32 = (
    "amazon-order-id merchant-order-id purchase-date last-updated-date order-status fulfillment-channel sales-channel "
    "order-channel url ship-service-level product-name sku asin item-status quantity currency item-price item-tax "
    "shipping-price shipping-tax gift-wrap-price gift-wrap-tax item-promotion-discount ship-promotion-discount ship-city "
    "ship-state ship-postal-code ship-country promotion-ids is-business-order purchase-order-number price-designation"
).split()


def order(
    oid,
    when,
    channel="Amazon",
    market="Amazon.com",
    status="Shipped",
    sku="SKU-1",
    qty="1",
    name="Widget",
    updated=None,
):
    row = dict.fromkeys(H32, "")
    row.update(
        {"amazon-order-id": oid, "purchase-date": when, "last-updated-date": updated or when, "order-status": status,
         "fulfillment-channel": channel, "sales-channel": market, "product-name": name, "sku": sku, "asin": "B0001",
         "item-status": status, "quantity": qty, "currency": "USD", "item-price": "9.99", "is-business-order": "false"}
    )  # fmt: skip
    return row


def tsv(name, header, rows, encoding="utf-8", sep="\t", bom=False, tail=""):
    text = (
        sep.join(header)
        + tail
        + "\n"
        + "".join(
            sep.join(r.get(h, "") if isinstance(r, dict) else r[i] for i, h in enumerate(header))
            + tail
            + "\n"
            for r in rows
        )
    )
    data = text.encode(encoding)
    (HERE / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


BASE = [
    order("111-0000001-0000001", "2026-05-01T10:00:00+00:00"),
    order("111-0000001-0000002", "2026-05-02T10:00:00+00:00", channel="Merchant"),
    order("202-0000001-0000003", "2026-05-03T10:00:00+00:00", market="Amazon.co.uk"),
    order("302-0000001-0000004", "2026-05-04T10:00:00+00:00", market="Amazon.de"),
    order("503-0000001-0000005", "2026-05-05T10:00:00+00:00", market="Amazon.co.jp"),
    order("404-0000001-0000006", "2026-05-06T10:00:00+00:00", market="Amazon.se"),
]


def main():
    tsv("_base_orders.txt", H32, BASE)
    tsv("orders_29_columns.txt", H32[:29], [order("111-0000002-0000001", "2026-05-07T10:00:00+00:00")])
    tsv(
        "orders_33_columns.txt",
        H32 + ["is-sold-by-ab"],
        [{**order("111-0000002-0000002", "2026-05-07T10:00:00+00:00"), "is-sold-by-ab": "false"}],
    )
    shuffled = list(reversed(H32)) + ["brand-new-column"]
    tsv(
        "orders_shuffled_extra.txt",
        shuffled,
        [{**order("111-0000002-0000003", "2026-05-07T10:00:00+00:00"), "brand-new-column": "x"}],
    )
    tsv("orders_comma.csv", H32, [order("111-0000002-0000004", "2026-05-07T10:00:00+00:00")], sep=",")
    tsv(
        "orders_trailing_tabs.txt",
        H32,
        [order("111-0000002-0000005", "2026-05-07T10:00:00+00:00")],
        tail="\t\t",
    )
    tsv(
        "orders_stray_quote.txt",
        H32,
        [order("111-0000002-0000006", "2026-05-07T10:00:00+00:00", name='Skillet 12" "cast iron')],
    )
    tsv(
        "orders_cp932.txt",
        H32,
        [
            order(
                "503-0000002-0000007",
                "2026-05-07T10:00:00+09:00",
                market="Amazon.co.jp",
                name="ステンレス製 マグカップ 350ml",
            )
        ],
        encoding="cp932",
    )
    tsv(
        "orders_utf8_bom.txt",
        H32,
        [order("111-0000002-0000008", "2026-05-07T10:00:00Z", name="Café crème")],
        bom=True,
    )
    tsv(
        "orders_cp1252.txt",
        H32,
        [order("202-0000002-0000009", "2026-05-07T10:00", market="Amazon.co.uk", name="Mug £9 – €10 café")],
        encoding="cp1252",
    )
    tsv("orders_bad_values.txt", H32, [
        order("111-0000003-0000001", "2026-05-08T10:00:00+00:00", qty="-2"),
        order("111-0000003-0000002", "2026-05-08T10:00:00+00:00", status="Teleported"),
        order("111-0000003-0000003", "08/05/2026 10:00"),
        order("111-0000003-0000004", "2026-05-08T10:00:00+00:00", market="Amazon.moon"),
        order("111-0000003-0000005", "2026-05-08T10:00:00+00:00"),
    ])  # fmt: skip
    good = "\t".join(
        order("111-0000007-0000001", "2026-05-07T10:00:00+00:00", name="Crème brûlée set").get(h, "")
        for h in H32
    )
    bad = "\t".join(
        order("111-0000007-0000002", "2026-05-07T10:00:00+00:00", name="Pâte XXX").get(h, "") for h in H32
    )
    blob = ("\t".join(H32) + "\n" + good + "\n" + bad + "\n").encode("utf-8").replace(b"XXX", b"\xff\xfe")
    (HERE / "orders_utf8_damaged.txt").write_bytes(blob)
    dup = order("111-0000004-0000001", "2026-05-09T10:00:00+00:00")
    tsv(
        "orders_exact_duplicates.txt",
        H32,
        [dup, dup, order("111-0000004-0000002", "2026-05-09T10:00:00+00:00")],
    )
    first = order(
        "111-0000005-0000001",
        "2026-05-10T10:00:00+00:00",
        channel="Merchant",
        status="Unshipped",
        updated="2026-05-10T11:00:00+00:00",
    )
    later = order(
        "111-0000005-0000001",
        "2026-05-10T10:00:00+00:00",
        channel="Merchant",
        status="Cancelled",
        updated="2026-05-11T09:00:00+00:00",
    )
    same = order("111-0000005-0000002", "2026-05-10T12:00:00+00:00")
    (HERE / "overlap").mkdir(exist_ok=True)
    tsv("overlap/orders_week1.txt", H32, [first, same])
    tsv("overlap/orders_week2.txt", H32, [later, same])
    tsv(
        "orders_missing_column.txt",
        [h for h in H32 if h != "sales-channel"],
        [order("111-0000006-0000001", "2026-05-07T10:00:00+00:00")],
    )
    (HERE / "orders_damaged.txt.gz").write_bytes(
        gzip.compress((HERE / "_base_orders.txt").read_bytes(), mtime=0)[:120]
    )

    fb = ["Date", "Rating", "Comments", "Your Response", "Order ID", "Rater Email"]
    tsv("feedback_old_response_header.txt", ["Date", "Rating", "Comments", "Response", "Order ID", "Rater Email"],
        [["5/3/26", "1", "late", "", "111-0000001-0000001", "a@example.com"]])  # fmt: skip
    tsv("feedback_marketplace_dates.txt", fb, [
        ["5/3/26", "1", "US M/D/YY", "", "111-0000001-0000001", "a@example.com"],
        ["3/5/26", "2", "UK D/M/YY", "", "202-0000001-0000003", "b@example.com"],
        ["4.5.26", "1", "DE D.M.YY", "", "302-0000001-0000004", "c@example.com"],
        ["26/5/6", "1", "JP YY/M/D", "", "503-0000001-0000005", "d@example.com"],
        ["2026-05-07", "2", "SE YYYY-MM-DD", "", "404-0000001-0000006", "e@example.com"],
    ])  # fmt: skip
    tsv(
        "feedback_cp1252.txt",
        fb,
        [
            [
                "3/5/26",
                "1",
                "Cassé à l'arrivée, 20 £ / 25 € perdus",
                "",
                "202-0000001-0000003",
                "b@example.com",
            ]
        ],
        encoding="cp1252",
    )
    tsv("feedback_bad_rows.txt", fb, [
        ["5/3/26", "6", "six stars", "", "111-0000001-0000001", "a@example.com"],
        ["May third", "1", "bad date", "", "111-0000001-0000002", "a@example.com"],
        ["5/3/26", "1", "unknown order", "", "999-9999999-9999999", "z@example.com"],
        ["13/13/26", "1", "impossible date", "", "111-0000001-0000002", "a@example.com"],
    ])  # fmt: skip
    claims = "order-id,claim-date,claim-reason,claim-status,claim-amount\n"
    claims += "111-0000001-0000001,2026-05-05T10:00:00-07:00,not-received,Under Review,10\n"
    claims += "111-0000001-0000002,2026-05-05T10:00Z,damaged,SELLER_FUNDED,10\n"
    claims += "202-0000001-0000003,2026-05-05,wrong-item,granted,10\n"
    claims += "302-0000001-0000004,2026-05-05T23:30:00+02:00,other,denied,10\n"
    (HERE / "claims.csv.gz").write_bytes(gzip.compress(claims.encode(), mtime=0))
    (HERE / "unknown_export.txt").write_text("report-id\tsomething\n1\t2\n", encoding="utf-8")


if __name__ == "__main__":
    main()
