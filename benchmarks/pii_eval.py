"""PII detector on llm-foundry's enterprise PII classification set.

    python benchmarks/pii_eval.py [--data ../shared/data/pii/enterprise_pii_classification.jsonl]

A passage is predicted "contains sensitive information" when genstack.guard.pii
finds anything in it. Prints precision, recall and F1 against the gold labels,
and which kinds fired.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "pii" / "enterprise_pii_classification.jsonl"


def passage(query: str) -> str:
    return query.split("'''", 2)[1] if query.count("'''") >= 2 else query


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT)
    args = ap.parse_args()
    from genstack.guard.pii import find_pii

    tp = fp = fn = tn = 0
    kinds: collections.Counter = collections.Counter()
    for line in args.data.open():
        row = json.loads(line)
        found = find_pii(passage(row["query"]))
        pred, gold = bool(found), row["gold"] == 1
        kinds.update({f.kind for f in found})
        tp += pred and gold
        fp += pred and not gold
        fn += (not pred) and gold
        tn += (not pred) and not gold
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    print(json.dumps({"passages": tp + fp + fn + tn, "positives": tp + fn, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
                      "precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4),
                      "kinds_fired": dict(kinds.most_common())}, indent=2))


if __name__ == "__main__":
    main()
