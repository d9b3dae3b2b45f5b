"""Train the small 'confidential business content' classifier shipped in genstack.guard.

    python benchmarks/train_confidential.py [--data ../shared/data/pii/enterprise_pii_classification.jsonl]

Logistic regression on MiniLM sentence embeddings (384 weights and a bias, stored as
JSON in src/genstack/guard/data/confidential.json). Trained on the even-numbered
passages, evaluated on the odd-numbered ones (never seen in training); prints
precision/recall of the classifier alone and combined with the pattern detectors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "pii" / "enterprise_pii_classification.jsonl"
OUT = ROOT / "src" / "genstack" / "guard" / "data" / "confidential.json"


def prf(pred, gold):
    tp = int(np.sum(pred & gold)); fp = int(np.sum(pred & ~gold)); fn = int(np.sum(~pred & gold))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "tp": tp, "fp": fp, "fn": fn}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--l2", type=float, default=1e-3)
    args = ap.parse_args()
    from genstack.embeddings import get_embedder
    from genstack.guard.pii import find_pii

    rows = [json.loads(l) for l in args.data.open()]
    texts = [r["query"].split("'''", 2)[1] for r in rows]
    gold = np.array([r["gold"] == 1 for r in rows])
    emb = get_embedder("minilm-l6-v2")
    X = np.concatenate([emb.embed(texts[i:i + 64]) for i in range(0, len(texts), 64)])
    tr, te = np.arange(len(rows)) % 2 == 0, np.arange(len(rows)) % 2 == 1
    w, b = np.zeros(X.shape[1]), 0.0
    y = gold[tr].astype(float)
    Xt = X[tr]
    for _ in range(3000):  # full-batch gradient descent on the logistic loss
        z = Xt @ w + b
        p = 1 / (1 + np.exp(-z))
        g = p - y
        w -= 2.0 * (Xt.T @ g / len(y) + args.l2 * w)
        b -= 2.0 * g.mean()
    score = 1 / (1 + np.exp(-(X @ w + b)))
    threshold = 0.5
    pred = score >= threshold
    patterns = np.array([bool(find_pii(t)) for t in texts])
    result = {"train": prf(pred[tr], gold[tr]), "test_classifier": prf(pred[te], gold[te]),
              "test_patterns": prf(patterns[te], gold[te]), "test_combined": prf((pred | patterns)[te], gold[te]),
              "test_passages": int(te.sum())}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"embedder": "minilm-l6-v2", "threshold": threshold, "bias": float(b),
                               "weights": [round(float(x), 6) for x in w],
                               "trained_on": "llm-foundry enterprise_pii_classification.jsonl, even-numbered passages",
                               "test": result["test_classifier"]}) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
