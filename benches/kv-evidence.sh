#!/usr/bin/env bash
# The KV-cache evidence of docs/kv-cache.md: streaming perplexity, pass-key retrieval and
# generation speed by depth for each --kv mode at equal attended budget, then the figures.
#
# Usage: benches/kv-evidence.sh [ppl|beyond|passkey|speed|plots|all]...   (default: all)
# Env:   FOVEA      the fovea binary (default: target/release/fovea, built if missing)
#        MODELS     models to run (default: "smollm2-135m gemma3-270m")
#        BUDGETS    attended budgets (default: "256 512 1024")
#        TEXT       long English text (default: ../shared/golden/text/pride_and_prejudice_ch01-15.txt)
#        OUT        data directory (default: docs/kv-data); figures go to docs/
#        THREADS    threads (default: 2)
#        N_MAX      cap on the streamed tokens of the ppl stage (default: the trained context)
#        BEYOND_BUDGETS  budgets of the beyond stage (default: $BUDGETS)
#        PASSKEY_LENGTHS, PASSKEY_DEPTHS, PASSKEY_TRIALS, PASSKEY_BUDGET  the pass-key grid
#                   (defaults: 2000,4000 (+12000 past an 8K trained context); 10,30,50,70,90; 2; 512)
#        SPEED_DEPTHS  depths of the fovea speed run (default 0,512,2048,8192,32768,131072; full stops
#                   at 8192, window at 32768); SPEED_BUDGET (default 512), SPEED_RAM (--kv-ram, 256M)
# Every run's JSON lands in $OUT with the exact command in a .cmd file beside it, so the doc's
# numbers can be traced and re-run one by one. Runs whose JSON exists are skipped (delete to redo).
set -euo pipefail
cd "$(dirname "$0")/.."

FOVEA=${FOVEA:-target/release/fovea}
MODELS=${MODELS:-"smollm2-135m gemma3-270m"}
BUDGETS=${BUDGETS:-"256 512 1024"}
TEXT=${TEXT:-../shared/golden/text/pride_and_prejudice_ch01-15.txt}
OUT=${OUT:-docs/kv-data}
THREADS=${THREADS:-2}
BEYOND_BUDGETS=${BEYOND_BUDGETS:-$BUDGETS}
PASSKEY_DEPTHS=${PASSKEY_DEPTHS:-10,30,50,70,90}
PASSKEY_TRIALS=${PASSKEY_TRIALS:-2}
PASSKEY_BUDGET=${PASSKEY_BUDGET:-512}
SPEED_DEPTHS=${SPEED_DEPTHS:-0,512,2048,8192,32768,131072}
SPEED_BUDGET=${SPEED_BUDGET:-512}
SPEED_RAM=${SPEED_RAM:-256M}
STAGES=${*:-all}
mkdir -p "$OUT"
[ -x "$FOVEA" ] || cargo build --release -p fovea-cli

short() { case $1 in smollm2-135m) echo smollm2 ;; gemma3-270m) echo gemma3 ;; *) basename "$1" .gguf ;; esac; }
# Trained context per model: streaming runs go up to it, "beyond" runs past it.
trained() { case $1 in smollm2-135m) echo 8192 ;; gemma3-270m) echo 32768 ;; *) echo 4096 ;; esac; }
text_tokens() { "$FOVEA" tokenize -m "$1" -f "$TEXT" 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

# run NAME CMD...: runs CMD once, stdout to $OUT/NAME.json, the command to $OUT/NAME.cmd.
run() {
    local name=$1; shift
    if [ -s "$OUT/$name.json" ]; then echo "have $name"; return; fi
    echo "run  $name: $*"
    echo "$*" > "$OUT/$name.cmd"
    "$@" > "$OUT/$name.json.tmp" 2> "$OUT/$name.log" && mv "$OUT/$name.json.tmp" "$OUT/$name.json" \
        || { echo "FAILED $name (see $OUT/$name.log)"; rm -f "$OUT/$name.json.tmp"; }
}

want() { [[ " $STAGES " == *" all "* || " $STAGES " == *" $1 "* ]]; }

for model in $MODELS; do
    m=$(short "$model")
    ctx=$(trained "$model")
    have=$(text_tokens "$model")
    n=$(( ctx < have ? ctx : have ))
    n=$(( n < ${N_MAX:-$n} ? n : ${N_MAX:-$n} ))
    ppl=("$FOVEA" perplexity -m "$model" -f "$TEXT" --streaming --json -t "$THREADS")
    if want ppl; then
        run "ppl-$m-full" "${ppl[@]}" -c "$n" --kv full
        for b in $BUDGETS; do
            for mode in window dilated fovea; do
                run "ppl-$m-$mode-b$b" "${ppl[@]}" -c "$n" --kv "$mode" --kv-budget "$b"
            done
        done
    fi
    # Beyond the trained context (only where the text is longer than it): window vs fovea.
    if want beyond && [ "$have" -gt "$ctx" ]; then
        for b in $BEYOND_BUDGETS; do
            for mode in window fovea; do
                run "beyond-$m-$mode-b$b" "${ppl[@]}" -c "$have" --kv "$mode" --kv-budget "$b"
            done
        done
    fi
    if want passkey; then
        lengths=${PASSKEY_LENGTHS:-2000,4000}
        [ -z "${PASSKEY_LENGTHS:-}" ] && [ "$ctx" -lt 16000 ] && lengths="2000,4000,12000"
        for mode in full window dilated fovea; do
            budget=(); [ "$mode" = full ] || budget=(--kv-budget "$PASSKEY_BUDGET")
            # The full cache cannot go past the trained context.
            l=$lengths
            [ "$mode" = full ] && l=$(echo "$lengths" | tr , '\n' | awk -v c="$ctx" '$1 < c' | paste -sd,)
            run "passkey-$m-$mode" "$FOVEA" passkey -m "$model" -t "$THREADS" --json \
                --lengths "$l" --depths "$PASSKEY_DEPTHS" --trials "$PASSKEY_TRIALS" --kv "$mode" "${budget[@]}"
        done
    fi
    if want speed; then
        # Generation after D tokens of context. The paged modes fill the context once per depth
        # and run the repetitions one after another (they cannot rewind). Full stops at 8K and
        # window at 32K: past its budget, window's cost is flat by construction.
        run "bench-$m-full" "$FOVEA" bench -m "$model" -t "$THREADS" -p 0 -n 64 -r 3 --json \
            -d 0,512,2048,8192 --kv full
        run "bench-$m-window-b$SPEED_BUDGET" "$FOVEA" bench -m "$model" -t "$THREADS" -p 0 -n 64 -r 3 --json \
            -d 0,512,2048,8192,32768 --kv window --kv-budget "$SPEED_BUDGET"
        run "bench-$m-fovea-b$SPEED_BUDGET" "$FOVEA" bench -m "$model" -t "$THREADS" -p 0 -n 64 -r 3 --json \
            -d "$SPEED_DEPTHS" --kv fovea --kv-budget "$SPEED_BUDGET" --kv-ram "$SPEED_RAM"
    fi
done

if want plots; then
    cargo run --release --example kv_plots -- "$OUT" docs
fi
