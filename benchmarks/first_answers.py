"""First impressions: 14 everyday questions to the bundled chat model, greedy, under candidate system prompts.

Run: .venv/bin/python benchmarks/first_answers.py
A question counts as answered when the reply holds the expected word. The
winner became Settings.system_prompt, the default of `genstack generate` and
plain `genstack chat` (see benchmarks/RESULTS.md).
"""
from genstack import get_model, Message
m = get_model("smollm2-135m-instruct")
QS = [("What is the capital of France?", ["paris"]),
      ("What is the capital of Japan?", ["tokyo"]),
      ("How many days are in a week?", ["seven", "7"]),
      ("What color is the sky on a clear day?", ["blue"]),
      ("What is 2 + 2?", ["4", "four"]),
      ("Who wrote Romeo and Juliet?", ["shakespeare"]),
      ("What is the largest planet in our solar system?", ["jupiter"]),
      ("What do bees make?", ["honey"]),
      ("What is the boiling point of water in Celsius?", ["100"]),
      ("Which animal is known as the king of the jungle?", ["lion"]),
      ("What language is spoken in Spain?", ["spanish"]),
      ("How many legs does a spider have?", ["eight", "8"]),
      ("What is the chemical symbol for water?", ["h2o", "h₂o"]),
      ("What is the opposite of hot?", ["cold"]),
     ]
SYS = {"none": None,
       "helpful-brief": "You are a helpful assistant. Answer the question directly and briefly.",
       "concise-en": "You are a helpful assistant. Answer in English, in one short sentence.",
       "knowledge": "You are a knowledgeable assistant. Give the correct answer first, in one sentence."}
for label, sp in SYS.items():
    ok=0; outs=[]
    for q, keys in QS:
        msgs=([Message("system", sp)] if sp else [])+[Message("user", q)]
        t=m.chat(msgs, greedy=True, max_tokens=32).text.strip().replace("\n"," ")
        hit=any(k in t.lower() for k in keys); ok+=hit; outs.append((hit,q,t[:90]))
    print(f"== {label}: {ok}/{len(QS)}")
    for o in outs: print("  ", "✓" if o[0] else "✗", o[1], "->", o[2])
