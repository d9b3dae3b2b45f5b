#!/usr/bin/env bash
# garak (the LLM vulnerability scanner) against `genstack serve`, through its
# OpenAI-compatible generator. Not part of the test suite: it is slow.
#
#   benchmarks/garak_scan.sh                      # guard block, the four probe families
#   GUARD=off benchmarks/garak_scan.sh            # the same scan with every defence off
#   PROBES=dan,promptinject GENERATIONS=1 benchmarks/garak_scan.sh
#
# garak gets its own virtualenv (.venv-garak): its dependencies (transformers,
# langchain, cloud SDKs) stay out of genstack's. Torch is pinned first so pip
# keeps the CPU build. Reports land in benchmarks/garak/ (JSONL + HTML).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GVENV=${GARAK_VENV:-$ROOT/.venv-garak}
PORT=${PORT:-8011}
GUARD=${GUARD:-block}
PROBES=${PROBES:-promptinject,latentinjection,dan,encoding}
GENERATIONS=${GENERATIONS:-1}
MODEL=${MODEL:-smollm2-135m-instruct}
OUT=${OUT:-$ROOT/benchmarks/garak}
GARAK_VERSION=0.17.1

make -C "$ROOT" install >/dev/null
if [ ! -x "$GVENV/bin/garak" ]; then
  python3 -m venv "$GVENV"
  "$GVENV/bin/pip" install --quiet "torch==2.13.0"
  "$GVENV/bin/pip" install --quiet "garak==$GARAK_VERSION"
fi
mkdir -p "$OUT"

guard_flags=(--guard "$GUARD")
[ "$GUARD" = off ] && guard_flags+=(--no-canary --redact off --sources off)
"$ROOT/.venv/bin/genstack" serve --port "$PORT" "${guard_flags[@]}" --rate-limit 0 --queue 1024 \
  --timeout 600 --no-access-log --log-level warning &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 1
done

opts=$(mktemp)
cat >"$opts" <<JSON
{"openai": {"OpenAICompatible": {"uri": "http://127.0.0.1:$PORT/v1/", "model": "$MODEL", "api_key": "unused",
 "max_tokens": 128, "suppressed_params": ["n", "frequency_penalty", "presence_penalty", "stop"]}}}
JSON
"$GVENV/bin/garak" --target_type openai.OpenAICompatible --target_name "$MODEL" \
  --generator_option_file "$opts" --probes "$PROBES" --generations "$GENERATIONS" \
  --report_prefix "$OUT/genstack-guard-$GUARD"
echo "reports: $OUT/genstack-guard-$GUARD.report.jsonl (and .html)"
