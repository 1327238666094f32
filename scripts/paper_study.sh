#!/usr/bin/env bash
# The paper's questions on the two real pretrained models (issue 17), on one GPU, in resumable parts of at most
# ten minutes each. Every job writes its own files under $OUT and is skipped when they exist, so a part that was
# cut short is continued by running it again.
#
#   SMOL=smol.gguf GEMMA=gemma.gguf OUT=runs/study bash scripts/paper_study.sh measure   # GPU, one part, <= 9.5 min
#   OUT=runs/study bash scripts/paper_study.sh tables                                    # CPU: the study's tables
#
# measure: six jobs side by side on the one GPU (the models are small: one job alone leaves most of it idle):
#   {smollm2-135m,gemma3-270m}_all.npz/_audit.json  all pairs, both protocols and removals, 64 x 512 tokens of
#       the bundled corpus (bfloat16), per-sequence KLs kept; pruning k = 1..4 by all six methods, costs on the
#       corpus's held-out split; the measured noise floor
#   gemma3-270m-slot_*                               the same for Gemma-3 with the slot's attention type (a moved
#       layer takes the sliding/full mask of the slot it lands in) instead of its own
#   guided_{smollm2-135m,gemma3-270m}.*              benchmarks/pruning/guided_removal.py: every search x guide under
#       kl, held-out perplexity and the bundled multiple-choice task (2,048 items: 1,024 to choose on, 1,024 held
#       out), k = 1..2 (the accuracy objective costs a forward of every item per candidate set)
#   guided_{smollm2-135m,gemma3-270m}-k4.*           kl and perplexity, k = 1..4 (SmolLM2: 27,405 exhaustive sets)
# Held-out costs are measured on other works than the calibration's (the bundled King James books), drawn by
# document; the audits add the sensitivity section, and SmolLM2's adjacent pairs are audited once more with bfloat16
# measured against float32 (smollm2-135m-adjacent-dtype_*).
# ceilings: `swapkl prune` under held-out-perplexity ceilings B = +10%, +25%, +50% (the number removed is the
#   outcome, as in the seed paper's budgets): one-shot and beam under each guide, and SLEB's greedy, on both models;
#   ceiling_{smollm2-135m,gemma3-270m}_{10,25,50}.json and .txt
# tables: benchmarks/study/agreement_tolerances.py, agreement_nulls.py and benchmarks/pruning/pruning_verdicts.py
#   over what measure wrote.
set -uo pipefail
part=${1:?usage: paper_study.sh measure|ceilings|tables}
OUT=${OUT:-runs/study}
SMOL=${SMOL:-smol.gguf} GEMMA=${GEMMA:-gemma.gguf}
LIMIT=${LIMIT:-540}  # seconds per job: the part ends inside one 10-minute command
# A CPU smoke run of the whole part on the demo model: SMOL=demo GEMMA=demo DEVICE=cpu SMOKE=1
DEVICE=${DEVICE:-cuda}
if [ -n "${SMOKE:-}" ]; then SIZE=(--tokens 1024 --seq-len 64); GSIZE=(--tokens 512 --seq-len 64 --items 32)
else SIZE=(--tokens 32768 --seq-len 512); GSIZE=(--tokens 4096 --seq-len 128 --items 2048); fi
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)  # absolute
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
METHODS=replacement,interchange,removal,block_influence,angular,sleb
AUDIT=(--pairs all "${SIZE[@]}" --device "$DEVICE" --max-memory 20GiB --prune-k 4)
[ "$DEVICE" = cuda ] && AUDIT+=(--dtype bfloat16)
FREE_SENSITIVITY=(--sensitivity rules,beam,draws,size)
GUIDED=(--device "$DEVICE" "${GSIZE[@]}" --batch-size 64 --out "$OUT")

job() {  # job NAME DONE_FILE COMMAND...: run in the background unless DONE_FILE exists
    local name=$1 done_file=$2; shift 2
    if [ -s "$done_file" ]; then echo "$name: done before, skipped"; return; fi
    echo "$name: started $(date -u +%T)"
    ( start=$SECONDS; timeout "$LIMIT" "$@" > "$OUT/logs/$name.log" 2>&1; rc=$?
      echo "$name: rc $rc after $((SECONDS - start)) s" | tee -a "$OUT/logs/$name.log" ) &
}

case "$part" in
measure)
    job audit-smollm2 "$OUT/smollm2-135m_audit.json" python3 benchmarks/study/agreement_measure.py --model "$SMOL" \
        "${AUDIT[@]}" "${FREE_SENSITIVITY[@]}" --prune-guides "$METHODS" --out "$OUT/smollm2-135m_all.npz" --json "$OUT/smollm2-135m_audit.json"
    job audit-gemma3 "$OUT/gemma3-270m_audit.json" python3 benchmarks/study/agreement_measure.py --model "$GEMMA" \
        "${AUDIT[@]}" "${FREE_SENSITIVITY[@]}" --prune-guides "$METHODS" --out "$OUT/gemma3-270m_all.npz" --json "$OUT/gemma3-270m_audit.json"
    job audit-gemma3-slot "$OUT/gemma3-270m-slot_audit.json" python3 benchmarks/study/agreement_measure.py \
        --model "$GEMMA" "${AUDIT[@]}" --attention-type slot --prune-guides replacement,interchange \
        --out "$OUT/gemma3-270m-slot_all.npz" --json "$OUT/gemma3-270m-slot_audit.json"
    job dtype-smollm2 "$OUT/smollm2-135m-adjacent-dtype_audit.json" python3 benchmarks/study/agreement_measure.py \
        --model "$SMOL" "${AUDIT[@]/all/adjacent}" --sensitivity rules,draws,dtype \
        --out "$OUT/smollm2-135m-adjacent-dtype_all.npz" --json "$OUT/smollm2-135m-adjacent-dtype_audit.json"
    job guided-smollm2 "$OUT/guided_smollm2-135m.json" python3 benchmarks/pruning/guided_removal.py --model "$SMOL" \
        --name guided_smollm2-135m --objectives kl,ppl,accuracy --max-k 2 "${GUIDED[@]}"
    job guided-gemma3 "$OUT/guided_gemma3-270m.json" python3 benchmarks/pruning/guided_removal.py --model "$GEMMA" \
        --name guided_gemma3-270m --objectives kl,ppl,accuracy --max-k 2 "${GUIDED[@]}"
    job guided-smollm2-k4 "$OUT/guided_smollm2-135m-k4.json" python3 benchmarks/pruning/guided_removal.py --model "$SMOL" \
        --name guided_smollm2-135m-k4 --objectives kl,ppl --max-k 4 "${GUIDED[@]}"
    job guided-gemma3-k4 "$OUT/guided_gemma3-270m-k4.json" python3 benchmarks/pruning/guided_removal.py --model "$GEMMA" \
        --name guided_gemma3-270m-k4 --objectives kl,ppl --max-k 4 "${GUIDED[@]}"
    wait
    ;;
ceilings)
    for model in smollm2-135m gemma3-270m; do
        file=$SMOL; [ "$model" = gemma3-270m ] && file=$GEMMA
        for ceiling in 10 25 50; do
            name=ceiling_${model}_${ceiling}
            job "$name" "$OUT/$name.json" python3 -m pytest_swapkl prune "$file" --device "$DEVICE" \
                "${GSIZE[@]::4}" --batch-size 64 --guide replacement,interchange,block_influence,angular \
                --search one-shot,beam,greedy --objective ppl --max-cost "$ceiling%" --json "$OUT/$name.json"
        done
    done
    wait
    for log in "$OUT"/logs/ceiling_*.log; do cp "$log" "$OUT/$(basename "$log" .log).txt"; done
    ;;
tables)
    python3 benchmarks/study/agreement_tolerances.py "$OUT"/smollm2-135m_all.npz "$OUT"/gemma3-270m_all.npz > "$OUT/tolerances.txt"
    for name in smollm2-135m gemma3-270m; do
        python3 benchmarks/study/agreement_nulls.py "$OUT/${name}_all.npz" --trials 10 --resamples 400 > "$OUT/${name}_nulls.txt"
    done
    python3 benchmarks/pruning/pruning_verdicts.py "$OUT"/smollm2-135m_audit.json "$OUT"/gemma3-270m_audit.json > "$OUT/verdicts.txt"
    cat "$OUT/tolerances.txt" "$OUT"/*_nulls.txt "$OUT/verdicts.txt"
    ;;
*) echo "paper_study.sh: unknown part '$part': use measure, ceilings or tables" >&2; exit 2 ;;
esac
