"""A stand-in for your own service: it makes its own predictions and reports them to streamops.

    .venv/bin/python examples/external_service.py --training-data fraud.csv  # labelled rows
    .venv/bin/python examples/external_service.py --count 3000               # serve and report
    .venv/bin/python examples/external_service.py --count 3000 --shift 300   # amounts drift

Settings come from STREAMOPS_* as for the CLI (`make demo ARGS=--keep` prints the export line).
"""

from __future__ import annotations

import argparse
import csv
import random
import time

import streamops

DEPLOYMENT = "fraud"


def transaction(rng: random.Random, shift: float) -> dict:
    """One transaction's features."""
    return {"amount": round(rng.expovariate(1 / 200) + shift, 2), "country": rng.choice("ABC")}


def outcome(rng: random.Random, features: dict) -> str:
    """What really happened (known days later in real life)."""
    return "1" if features["amount"] > 450 + rng.gauss(0, 60) else "0"


def my_model(features: dict) -> tuple[str, dict[str, float]]:
    """Your model, wherever it runs: here a rule on the amount."""
    p = min(0.99, features["amount"] / 900)
    return ("1" if p > 0.5 else "0"), {"0": 1 - p, "1": p}


def write_training(path: str, rows: int, rng: random.Random) -> None:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["amount", "country", "is_fraud", "predicted"])
        for _ in range(rows):
            x = transaction(rng, 0.0)
            out.writerow([x["amount"], x["country"], outcome(rng, x), my_model(x)[0]])
    print(f"wrote {rows} labelled rows with your model's predictions to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description="report a model's predictions to streamops")
    parser.add_argument("--training-data", help="write labelled rows to this CSV and stop")
    parser.add_argument("--count", type=int, default=3000, help="predictions to report")
    parser.add_argument("--shift", type=float, default=0.0, help="add this to every amount")
    args = parser.parse_args()
    rng = random.Random(time.time_ns())
    if args.training_data:
        write_training(args.training_data, 5000, rng)
        return
    with streamops.Client() as client:  # close() flushes; a delivery failure raises
        for i in range(args.count):
            features = transaction(rng, args.shift)
            label, probabilities = my_model(features)
            aid = f"tx-{time.time_ns()}-{i}"
            client.report_prediction(DEPLOYMENT, aid, features, label, probabilities)
            client.send_actual(DEPLOYMENT, aid, outcome(rng, features))
    print(f"reported {args.count} predictions and their actuals to deployment {DEPLOYMENT}")


if __name__ == "__main__":
    main()
