"""An independent check of the analytics: DuckDB over the same lake files.

`cloudpf demo` writes a lake with realistic history (price changes, cancellations,
refunds, removed products, a malformed record, purchases whose created_at is corrected to
another day, purchases removed with and without an old image, orders with two identical
line items); `cloudpf report` runs the reviewed SQL of athena/ on the embedded DataFusion
engine. This script recomputes the same numbers its own way and compares every row:
DuckDB over the gzip CSV partitions, taking each purchase's latest change over the whole
lake by numeric sequence number (not the views' per-partition windows, departure rows and
tombstones, nor their zero-padded text), and the standard library over the products and
purchases change logs.

Then the lake is compacted (`cloudpf compact`: one object per tenant-day) and checked
again, and once more in the state a compaction killed between writing and removing
leaves (the compacted objects and every small one): every report must stay the same.

usage: python tests/duckdb_check.py target/debug/cloudpf
"""

import csv
import glob
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from decimal import ROUND_HALF_UP, Decimal

import duckdb

VALID = "status NOT IN ('cancelled', 'refunded')"


def cents(value):
    """Two decimals, halves away from zero, as SQL ROUND and CAST to DECIMAL(38, 2) do."""
    return str(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# Every report's output of one check, to compare the checks of one lake.
OUTPUTS = []


def report(binary, data, tenant, name, start, end, *extra):
    out = subprocess.run(
        [binary, "report", "--data-dir", data, "--tenant", tenant, "--report", name,
         "--from", start, "--to", end, *extra],
        check=True, capture_output=True, text=True,
    ).stdout
    OUTPUTS.append((tenant, name, out))
    rows = list(csv.reader(io.StringIO(out)))
    return rows[0], rows[1:]


def objects(lake):
    """Every object of the lake, relative to it."""
    return sorted(os.path.relpath(p, lake)
                  for p in glob.glob(f"{lake}/**/*.gz", recursive=True))


def current_categories(lake, tenant):
    """product_id -> category of each product's latest change, REMOVEd ones dropped."""
    latest = {}
    for path in glob.glob(f"{lake}/products/json/tenant_id={tenant}/*/*.json.gz"):
        with gzip.open(path, "rt") as f:
            for line in f:
                change = json.loads(line)
                key = change["keys"]["product_id"]
                seq = int(change["sequence_number"])
                if key not in latest or seq > latest[key][0]:
                    latest[key] = (seq, change)
    return {
        key: change["new_image"]["category"]
        for key, (_, change) in latest.items()
        if change["op"] != "REMOVE"
    }


def check(binary, data):
    """Every report of every demo shop against DuckDB; the reports' outputs."""
    OUTPUTS.clear()
    lake = os.path.join(data, "lake")
    db = duckdb.connect()
    db.execute(f"""
        CREATE VIEW lines AS
        SELECT * FROM read_csv('{lake}/purchases/csv/*/*/*.csv.gz',
                               hive_partitioning = true, hive_types_autocast = false,
                               header = true, all_varchar = true,
                               quote = '"', escape = '\\')
    """)
    # The latest change of each purchase over the whole lake: the highest sequence number
    # as a number. Its rows in the partition it left (departure) say nothing about where
    # it is; a REMOVE leaves nothing.
    db.execute("""
        CREATE VIEW current AS
        WITH ranked AS (
          SELECT *, dense_rank() OVER (PARTITION BY tenant_id, purchase_id
                                       ORDER BY CAST(sequence_number AS HUGEINT) DESC) AS r
          FROM lines
        )
        SELECT DISTINCT tenant_id, dt, purchase_id, customer_id, status, line_number,
               product_id, unit_price,
               CAST(quantity AS BIGINT) AS quantity,
               CAST(line_total AS DECIMAL(38, 6)) AS line_total,
               CAST(total_amount AS DECIMAL(38, 6)) AS total_amount
        FROM ranked WHERE r = 1 AND op <> 'REMOVE' AND departure = 'false'
    """)
    # The demo must exercise what the views handle specially.
    moves, removals, tombstones = db.execute("""
        SELECT count(*) FILTER (op = 'MODIFY' AND departure = 'true'),
               count(*) FILTER (op = 'REMOVE'),
               (SELECT count(*) FROM read_csv('{lake}/purchases/tombstones/*/*.csv.gz',
                                              header = true, all_varchar = true))
        FROM lines
    """.replace("{lake}", lake)).fetchone()
    twins = db.execute("""
        SELECT count(*) FROM (
          SELECT tenant_id, purchase_id, product_id, quantity, unit_price FROM current
          WHERE coalesce(line_number, '') <> ''
          GROUP BY ALL HAVING count(*) > 1)
    """).fetchone()[0]
    assert moves > 0 and removals > 0 and tombstones > 0 and twins > 0, \
        f"the demo lacks moves ({moves}), removals ({removals}), tombstones " \
        f"({tombstones}) or identical lines ({twins})"
    checked = 0
    for (tenant,) in db.execute("SELECT DISTINCT tenant_id FROM lines ORDER BY 1").fetchall():
        start, end = db.execute(
            "SELECT min(dt), max(dt) FROM lines WHERE tenant_id = ?", [tenant]).fetchone()
        orders = f"""
            SELECT DISTINCT purchase_id, customer_id, status, total_amount
            FROM current WHERE tenant_id = '{tenant}'
        """
        n, revenue, customers = db.execute(f"""
            SELECT count(*), coalesce(sum(total_amount), 0), count(DISTINCT customer_id)
            FROM ({orders}) WHERE {VALID}
        """).fetchone()
        units = db.execute(f"""
            SELECT coalesce(sum(quantity), 0) FROM current
            WHERE tenant_id = '{tenant}' AND {VALID}
        """).fetchone()[0]
        everything, cancelled, refunded = db.execute(f"""
            SELECT count(*), count(*) FILTER (status = 'cancelled'),
                   count(*) FILTER (status = 'refunded')
            FROM ({orders})
        """).fetchone()
        want = [str(n), cents(revenue), str(units),
                cents(Decimal(revenue) / n if n else 0), str(customers),
                str(everything), str(cancelled), str(refunded)]
        _, got = report(binary, data, tenant, "summary", start, end)
        assert got == [want], f"{tenant} summary: cloudpf {got} != duckdb {[want]}"
        assert n > 20 and cancelled + refunded > 0, f"{tenant}: the demo lake is too thin"

        daily = db.execute(f"""
            SELECT dt, count(*), sum(total_amount) FROM (
              SELECT DISTINCT dt, purchase_id, total_amount FROM current
              WHERE tenant_id = '{tenant}' AND {VALID})
            GROUP BY dt ORDER BY dt
        """).fetchall()
        _, got = report(binary, data, tenant, "timeseries", start, end)
        assert got == [[d, str(c), cents(r)] for d, c, r in daily], f"{tenant} timeseries"

        top = db.execute(f"""
            SELECT product_id, sum(quantity) AS units, sum(line_total) AS revenue,
                   count(DISTINCT purchase_id)
            FROM current WHERE tenant_id = '{tenant}' AND {VALID}
              AND product_id IS NOT NULL AND product_id <> ''
            GROUP BY product_id ORDER BY revenue DESC, units DESC, product_id LIMIT 10
        """).fetchall()
        header, got = report(binary, data, tenant, "top_products", start, end)
        picked = [[r[header.index(c)] for c in ("product_id", "units", "revenue", "orders")]
                  for r in got]
        assert picked == [[p, str(u), cents(r), str(o)] for p, u, r, o in top], \
            f"{tenant} top_products: {picked} != {top}"

        categories = current_categories(lake, tenant)
        db.execute("CREATE OR REPLACE TEMP TABLE catalog (product_id VARCHAR, category VARCHAR)")
        db.executemany("INSERT INTO catalog VALUES (?, ?)", list(categories.items()))
        by_category = db.execute(f"""
            SELECT coalesce(c.category, '(unknown)') AS category, sum(l.quantity),
                   sum(l.line_total) AS revenue, count(DISTINCT l.purchase_id)
            FROM current l LEFT JOIN catalog c USING (product_id)
            WHERE l.tenant_id = '{tenant}' AND l.{VALID}
              AND l.product_id IS NOT NULL AND l.product_id <> ''
            GROUP BY 1 ORDER BY revenue DESC, category
        """).fetchall()
        _, got = report(binary, data, tenant, "by_category", start, end)
        assert got == [[c, str(u), cents(r), str(o)] for c, u, r, o in by_category], \
            f"{tenant} by_category: {got} != {by_category}"
        assert len(by_category) > 2, f"{tenant}: too few categories to compare"

        # rfm reads the purchases change log: each purchase's latest change by number.
        latest = {}
        for path in glob.glob(f"{lake}/purchases/json/tenant_id={tenant}/*/*.json.gz"):
            with gzip.open(path, "rt") as f:
                for line in f:
                    change = json.loads(line)
                    key = change["keys"]["purchase_id"]
                    seq = int(change["sequence_number"])
                    if change["departure"]:
                        change = None  # the purchase left this partition with this change
                    if key not in latest or seq > latest[key][0] or (
                            seq == latest[key][0] and change is not None):
                        latest[key] = (seq, change)
        customers = {}
        for _, change in latest.values():
            if change is None or change["op"] == "REMOVE":
                continue
            order = change["new_image"]
            if order["status"] in ("cancelled", "refunded"):
                continue
            day = order["created_at"][:10]
            last, n, value = customers.get(order["customer_id"], ("", 0, Decimal(0)))
            customers[order["customer_id"]] = (
                max(last, day), n + 1, value + Decimal(order["total_amount"]))
        header, got = report(binary, data, tenant, "rfm", start, end, "--limit", "1000")
        picked = sorted([r[header.index(c)] for c in ("customer_id", "last_order", "orders",
                                                       "revenue")] for r in got)
        want = sorted([c, last, str(n), cents(v)] for c, (last, n, v) in customers.items())
        assert picked == want, f"{tenant} rfm: {picked[:5]} != {want[:5]}"
        checked += 1
    assert checked == 2, checked
    print(f"  duckdb agrees with cloudpf on summary, timeseries, top_products, by_category and "
          f"rfm for {checked} demo shops ({moves} moved, {removals} removed, {tombstones} "
          f"tombstones, {twins} orders with identical lines)")
    return list(OUTPUTS)


def compact(binary, data):
    summary = json.loads(subprocess.run(
        [binary, "compact", "--data-dir", data, "--all-dates"],
        check=True, capture_output=True, text=True,
    ).stdout)
    assert summary["failed"] == [], summary["failed"]
    return summary


def main(binary):
    data = tempfile.mkdtemp(prefix="cloudpf-duckdb-")
    subprocess.run(
        [binary, "demo", "--data-dir", data, "--tenants", "2", "--products", "150",
         "--purchases", "400", "--seed", "7"],
        check=True, capture_output=True,
    )
    lake = os.path.join(data, "lake")
    small = objects(lake)
    saved = tempfile.mkdtemp(prefix="cloudpf-duckdb-small-")
    shutil.copytree(lake, saved, dirs_exist_ok=True)
    print("the demo lake as the handlers wrote it:")
    want = check(binary, data)

    summary = compact(binary, data)
    compacted = objects(lake)
    partitions = {os.path.dirname(o) for o in small}
    assert len(compacted) == len(partitions) < len(small), \
        f"{len(small)} objects in {len(partitions)} partitions became {len(compacted)}"
    assert summary["compacted"], summary
    print(f"compacted: {len(small)} objects became {len(compacted)}:")
    assert check(binary, data) == want, "a report changed with compaction"

    # A compaction killed after writing and before removing: both sets side by side.
    shutil.copytree(saved, lake, dirs_exist_ok=True)
    assert objects(lake) == sorted(set(small) | set(compacted))
    print("a compaction killed before removing anything (both sets present):")
    assert check(binary, data) == want, "a report changed with the interrupted compaction"

    compact(binary, data)
    assert len(objects(lake)) == len(partitions), "the next run did not finish the job"
    print("the next run finished it:")
    assert check(binary, data) == want, "a report changed after finishing the compaction"
    assert compact(binary, data)["compacted"] == [], "a compaction with nothing new wrote"


if __name__ == "__main__":
    main(sys.argv[1])
