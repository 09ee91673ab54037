"""Regenerate the demo files (deterministic): python examples/generate.py

customers.csv        12,000 customers, about 3% of them invalid in a realistic way
customers-update.xlsx  500 rows: 300 updates of existing customers and 200 new ones
expected.json        what the demo must find after importing both and exporting NZ customers
"""

from __future__ import annotations

import csv
import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent
COUNTRIES = ["NZ", "AU", "GB", "US", "DE", "FR", "JP"]
FIRST = [
    "Aroha",
    "Liam",
    "Olivia",
    "Noah",
    "Mia",
    "Jack",
    "Isla",
    "Hemi",
    "Zoë",
    "José",
    "Chloé",
    "Yuki",
    "Søren",
]
LAST = ["Smith", "Ngata", "Williams", "Brown", "Müller", "Dubois", "Tanaka", "O'Neil", "García", "Kowalski"]
HEADER = [
    "Customer ID",
    "E-mail",
    "Full name",
    "country",
    "Signed up",
    "Lifetime value",
    "orders",
    "Marketing opt-in",
    "Last order",
    "tags",
]


def customer(rng: random.Random, number: int) -> dict:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    signed = date(2019, 1, 1) + timedelta(days=rng.randint(0, 2000))
    last_order = datetime(2024, 1, 1, 9) + timedelta(minutes=rng.randint(0, 500_000))
    return {
        "Customer ID": f"C{number:06d}",
        "E-mail": f"{first.lower()}.{last.lower().replace(chr(39), '')}{number}@example.com",
        "Full name": f"{first} {last}" + (", Jr." if number % 211 == 0 else ""),
        "country": rng.choice(COUNTRIES),
        "Signed up": signed.isoformat(),
        "Lifetime value": f"{rng.randint(0, 500_000) / 100:.2f}",
        "orders": str(rng.randint(0, 80)),
        "Marketing opt-in": rng.choice(["yes", "no", "TRUE", "false", "1", "0"]),
        "Last order": last_order.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tags": json.dumps(rng.sample(["vip", "wholesale", "newsletter", "returns"], rng.randint(0, 2))),
    }


BREAKAGES = [
    ("E-mail", "not-an-email"),
    ("country", "Narnia"),
    ("Signed up", "31/02/2021"),
    ("Lifetime value", "-5.00"),
    ("orders", "many"),
    ("Marketing opt-in", "perhaps"),
    ("tags", "[unclosed"),
]


def main() -> None:
    rng = random.Random(2026)
    rows, valid = [], {}
    invalid = 0
    for number in range(1, 12_001):
        row = customer(rng, number)
        if rng.random() < 0.03:
            column, value = rng.choice(BREAKAGES)
            row[column] = value
            invalid += 1
        else:
            valid[row["Customer ID"]] = row
        if number % 500 == 0:
            row["Full name"] = (
                f"{row['Full name']}\n(c/o reception)"  # a quoted newline, as spreadsheets write
            )
        rows.append(row)
    with (HERE / "customers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerows(rows)

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Customers"
    sheet.append(HEADER)
    existing = rng.sample(sorted(valid), 300)
    updates = 0
    for customer_id in existing:
        row = dict(valid[customer_id])
        row["country"] = "NZ"
        row["orders"] = str(int(row["orders"]) + 1)
        valid[customer_id] = row
        updates += 1
        sheet.append(_typed(row))
    for number in range(20_001, 20_201):
        row = customer(rng, number)
        row["country"] = "NZ"
        valid[row["Customer ID"]] = row
        sheet.append(_typed(row))
    book.save(HERE / "customers-update.xlsx")

    expected = {
        "csv": {"rows": len(rows), "created": len(rows) - invalid, "failed": invalid},
        "xlsx": {"rows": 500, "updated": updates, "created": 200, "failed": 0},
        "export": {
            "filter": {"field": "country", "op": "eq", "value": "NZ"},
            "rows": sum(1 for row in valid.values() if row["country"] == "NZ"),
        },
    }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


def _typed(row: dict) -> list:
    # Excel cells carry real types: numbers, dates, booleans.
    return [
        row["Customer ID"],
        row["E-mail"],
        row["Full name"],
        row["country"],
        date.fromisoformat(row["Signed up"]),
        float(row["Lifetime value"]),
        int(row["orders"]),
        row["Marketing opt-in"] in ("yes", "TRUE", "1"),
        datetime.strptime(row["Last order"], "%Y-%m-%dT%H:%M:%SZ"),
        row["tags"],
    ]


if __name__ == "__main__":
    main()
