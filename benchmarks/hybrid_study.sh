#!/usr/bin/env bash
# The research question, end to end, at a size a 2-core CPU finishes in about an hour:
# multilingual-e5-small zero-shot on every domain benchmark, then short X-X / X-Y / hybrid
# fine-tunes on MLQA-R pairs evaluated zero-shot (unseen domains, partly unseen languages)
# on XQuAD-R, legal and technical benchmarks, with Holm-corrected paired t-tests.
#
#   bash benchmarks/hybrid_study.sh            # writes out/study/, then
#   .venv/bin/python benchmarks/collect_results.py   # -> benchmarks/results/*.md
#
# Every step is skipped when its output exists (delete out/study/... to redo one).
set -euo pipefail
cd "$(dirname "$0")/.."
X=${XEVAL:-.venv/bin/xeval}
OUT=${OUT:-out/study}
STEPS=${STEPS:-40}
mkdir -p "$OUT/bench" "$OUT/runs" "$OUT/ft"

bench() {  # name dir [options...]
  local name=$1 dir=$2; shift 2
  [ -d "$OUT/bench/$dir" ] || $X build-benchmark "$name" --out "$OUT/bench/$dir" "$@"
}
run_eval() {  # model bench-dir label
  local model=$1 b=$2 label=$3
  local rd="$OUT/runs/$b/$label"
  if [ ! -f "$rd/eval/summary.csv" ]; then
    [ -f "$rd/run.json" ] || $X run --model "$model" --benchmark "$OUT/bench/$b" --out "$rd" --overwrite --quiet
    $X evaluate "$rd" > /dev/null
  fi
}

# zero-shot benchmarks at their default sizes (issue: legal and technical benchmarks)
bench python-faq python-faq
bench manpages manpages
bench justice-canada justice-canada
bench finlex finlex
bench cc-legalcode cc-legalcode
# study benchmarks: XQuAD-R with 100 question units x 11 languages against the full pool,
# and smaller legal/technical sets so four models fit the CPU budget
bench xquad-r xquad-r-s100 --sample-queries 100
bench justice-canada justice-canada-s1500 --size 1500

for b in python-faq cc-legalcode xquad-r-s100 justice-canada-s1500; do
  run_eval multilingual-e5-small "$b" e5-small
done

# training pairs (MLQA-R: general domain; document-disjoint from XQuAD-R, checked below)
[ -f "$OUT/pairs-mlqa-r.parquet" ] || $X pairs lareqa-mlqa-r --out "$OUT/pairs-mlqa-r.parquet"
for s in xx xy hybrid; do
  [ -f "$OUT/ft/$s/model/config.json" ] || $X finetune -m multilingual-e5-small \
      -p "$OUT/pairs-mlqa-r.parquet" -o "$OUT/ft/$s" --strategy "$s" --alpha 0.5 \
      --max-steps "$STEPS" --batch-size 32 --warmup 4 --freeze-embeddings --seed 0 \
      --save-steps 20 --overlap-benchmark "$OUT/bench/xquad-r-s100" --no-progress --overwrite
  for b in xquad-r-s100 python-faq cc-legalcode justice-canada-s1500; do
    run_eval "$OUT/ft/$s/model" "$b" "ft-$s"
  done
done

for b in xquad-r-s100 python-faq cc-legalcode justice-canada-s1500; do
  [ -d "$OUT/compare/$b" ] || $X compare "$OUT/runs/$b" --test paired-t --correction holm \
      --metric MRR@10 --metric R@10 --metric MAP --metric LB --baseline e5-small \
      --out "$OUT/compare/$b" > "$OUT/compare-$b.txt"
done
# the research question: hybrid against X-X, X-Y and the base, per query (conservative)
for b in xquad-r-s100 python-faq cc-legalcode justice-canada-s1500; do
  [ -d "$OUT/compare-hybrid/$b" ] || $X compare "$OUT/runs/$b" --test paired-t --correction holm \
      --unit query --metric MRR@10 --metric R@10 --metric MAP --metric LB --baseline ft-hybrid \
      --out "$OUT/compare-hybrid/$b" > "$OUT/compare-hybrid-$b.txt"
done

# the remaining zero-shot runs at default sizes (largest last)
for b in justice-canada manpages finlex; do
  run_eval multilingual-e5-small "$b" e5-small
done
echo "study done"
