#!/usr/bin/env bash
# garak (the LLM vulnerability scanner) against `genstack serve`, through its
# OpenAI-compatible generator. Not part of the test suite: it is slow.
#
#   benchmarks/garak_scan.sh                      # guard block, the four probe families
#   GUARD=off benchmarks/garak_scan.sh            # the same scan with every defence off
#   PROBES=dan,promptinject CAP=8 benchmarks/garak_scan.sh
#
# garak gets its own virtualenv (.venv-garak): its dependencies (transformers,
# langchain, cloud SDKs) stay out of genstack's. They are installed from the
# pinned, checked set in benchmarks/garak-requirements.txt with --no-deps: left
# to itself, pip's resolver did not finish garak 0.17.1's ~170 dependencies in
# 12 minutes. Torch is pinned to the CPU build. Reports land in
# benchmarks/garak/ (JSONL + HTML).
#
# Each probe sends at most CAP prompts (garak's soft_probe_prompt_cap, 256 by
# default; a few probes ignore it: dan.Ablation_Dan_11_0 sends 127 and
# latentinjection.LatentWhois 168), PARALLEL at a time to a server that batches
# them (--batch). An input the guard blocks is an HTTP 400, which garak records
# as an attempt without output and leaves out of its own score;
# benchmarks/garak_summary.py, run at the end, counts it as resisted and
# reports every probe's attack success over all the attempts sent.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GVENV=${GARAK_VENV:-$ROOT/.venv-garak}
PORT=${PORT:-8011}
GUARD=${GUARD:-block}
PROBES=${PROBES:-promptinject,latentinjection,dan,encoding}
GENERATIONS=${GENERATIONS:-1}
CAP=${CAP:-32}
PARALLEL=${PARALLEL:-16}
MAX_TOKENS=${MAX_TOKENS:-96}
MODEL=${MODEL:-smollm2-135m-instruct}
OUT=${OUT:-$ROOT/benchmarks/garak}

make -C "$ROOT" install >/dev/null
if [ ! -x "$GVENV/bin/garak" ]; then
  python3 -m venv "$GVENV"
  "$GVENV/bin/pip" install --quiet --no-deps -r "$ROOT/benchmarks/garak-requirements.txt"
  "$GVENV/bin/pip" check
fi
mkdir -p "$OUT"

guard_flags=(--guard "$GUARD")
[ "$GUARD" = off ] && guard_flags+=(--no-canary --redact off --sources off)
"$ROOT/.venv/bin/genstack" serve --port "$PORT" "${guard_flags[@]}" --rate-limit 0 --queue 1024 \
  --batch "$PARALLEL" \
  --timeout 600 --no-access-log --log-level warning &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 1
done

opts=$(mktemp)
cat >"$opts" <<JSON
{"openai": {"OpenAICompatible": {"uri": "http://127.0.0.1:$PORT/v1/", "model": "$MODEL", "api_key": "unused",
 "max_tokens": $MAX_TOKENS, "suppressed_params": ["n", "frequency_penalty", "presence_penalty", "stop"]}}}
JSON
cfg=$(mktemp --suffix .yaml)
printf 'run:\n  soft_probe_prompt_cap: %s\n' "$CAP" >"$cfg"
"$GVENV/bin/garak" --target_type openai.OpenAICompatible --target_name "$MODEL" \
  --generator_option_file "$opts" --probes "$PROBES" --generations "$GENERATIONS" \
  --config "$cfg" --parallel_attempts "$PARALLEL" --seed 42 \
  --report_prefix "$OUT/genstack-guard-$GUARD"
echo "reports: $OUT/genstack-guard-$GUARD.report.jsonl (and .html)"
"$ROOT/.venv/bin/python" "$ROOT/benchmarks/garak_summary.py" "$OUT/genstack-guard-$GUARD.report.jsonl"
