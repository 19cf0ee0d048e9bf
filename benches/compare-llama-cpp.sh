#!/usr/bin/env bash
# compare-llama-cpp.sh: fovea vs llama.cpp throughput on the same model, threads and machine.
#
# Runs `fovea bench --json` and `llama-bench -o json` INTERLEAVED, one repetition each per round
# (fovea, llama, fovea, llama, ...), so that slow drifts in machine load hit both engines alike,
# then prints a markdown table of the per-round medians:
#
#   | test | fovea t/s (median) | llama.cpp t/s (median) | ratio |      ratio = fovea / llama.cpp
#
# This script does not build llama.cpp and the repository holds none of its code: pass a
# llama-bench binary you built yourself (any CPU build; the golden data used a Release build with
# -DGGML_NATIVE=ON -DGGML_OPENMP=ON of the llama.cpp vendored in the PyPI sdist llama-cpp-python 0.3.36).
# It does not build fovea either: run `cargo build --release -p fovea-cli` first.
#
# Usage:
#   benches/compare-llama-cpp.sh --llama-bench PATH [-m MODEL] [-t THREADS] [-p N] [-n N] [-r ROUNDS]
#                                [-d DEPTH] [--fovea PATH] [--llama-args "ARGS"] [--fovea-args "ARGS"]
#                                [--keep DIR]
#
#   --llama-bench PATH  llama-bench binary (or env LLAMA_BENCH). Required.
#   --fovea PATH        fovea binary (or env FOVEA; default: target/release/fovea of this repo).
#   -m MODEL            a GGUF path or a fovea short name (default: smollm2-135m). A short name is
#                       resolved to its cached file with `fovea inspect NAME` (which fetches it on
#                       first use), and llama-bench is given that same file.
#   -t THREADS          threads for both engines (default: 2).
#   -p N / -n N         prompt tokens (ppN) / generated tokens (tgN) (defaults: 512 / 128; 0 skips).
#   -r ROUNDS           interleaved rounds, one repetition of each engine per round (default: 5).
#   -d DEPTH            tokens already in the KV cache before each test (default: 0).
#   --llama-args ARGS   extra llama-bench arguments, word-split (e.g. "-fa 0 --repack 0").
#   --fovea-args ARGS   extra `fovea bench` arguments, word-split (e.g. "--isa avx2").
#   --keep DIR          keep every round's raw JSON (and stderr) in DIR instead of a temp dir.
#
# Both engines do their own untimed warm-up run before each measured repetition. llama-bench runs
# with its defaults unless --llama-args says otherwise (F16 KV cache, flash attention auto, weight
# repacking on). The machine is shared and noisy: compare medians, use more rounds (-r 9) when the
# per-round spread printed under the table is wide, and distrust a run during which other processes
# took CPU (the script measures it from /proc/stat and flags more than 10%): on a 2-core machine
# with other work running, llama.cpp's tg128 fell from ~95 to ~5-14 t/s (its OpenMP threads spin
# at barriers) while fovea's fell far less, inflating the ratio. (The load average is no guide on a
# shared machine: it counts other containers' tasks.)
set -euo pipefail

die() { echo "compare-llama-cpp: $*" >&2; exit 2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
llama_bench="${LLAMA_BENCH:-}"
fovea="${FOVEA:-$repo_root/target/release/fovea}"
model="smollm2-135m"
threads=2
n_prompt=512
n_gen=128
rounds=5
depth=0
llama_args=""
fovea_args=""
keep=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --llama-bench) llama_bench="${2:?}"; shift 2 ;;
        --fovea) fovea="${2:?}"; shift 2 ;;
        -m|--model) model="${2:?}"; shift 2 ;;
        -t|--threads) threads="${2:?}"; shift 2 ;;
        -p|--n-prompt) n_prompt="${2:?}"; shift 2 ;;
        -n|--n-gen) n_gen="${2:?}"; shift 2 ;;
        -r|--rounds) rounds="${2:?}"; shift 2 ;;
        -d|--depth) depth="${2:?}"; shift 2 ;;
        --llama-args) llama_args="${2?}"; shift 2 ;;
        --fovea-args) fovea_args="${2?}"; shift 2 ;;
        --keep) keep="${2:?}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

for v in threads n_prompt n_gen rounds depth; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer, got '${!v}'"
done
[[ $rounds -ge 1 ]] || die "-r must be at least 1"
[[ $threads -ge 1 ]] || die "-t must be at least 1"
[[ $n_prompt -gt 0 || $n_gen -gt 0 ]] || die "nothing to measure: -p and -n are both 0"
[[ -n "$llama_bench" ]] || die "no llama-bench: pass --llama-bench PATH or set LLAMA_BENCH"
[[ -x "$llama_bench" ]] || die "llama-bench '$llama_bench' is not an executable file"
[[ -x "$fovea" ]] || die "fovea '$fovea' is not an executable file (build it: cargo build --release -p fovea-cli)"
command -v python3 >/dev/null || die "python3 is needed to read the JSON"

# One model file for both engines.
if [[ -f "$model" ]]; then
    model_path="$model"
else
    model_path="$("$fovea" inspect "$model" | sed -n 's/^file: //p' | head -n 1)" ||
        die "cannot resolve model '$model' with '$fovea inspect'"
    [[ -f "$model_path" ]] || die "cannot resolve model '$model' to a file"
fi

if [[ -n "$keep" ]]; then
    mkdir -p "$keep"
    out="$keep"
else
    out="$(mktemp -d "${TMPDIR:-/tmp}/compare-llama-cpp.XXXXXX")"
    trap 'rm -rf "$out"' EXIT
fi

read -r -a llama_extra <<<"$llama_args"
read -r -a fovea_extra <<<"$fovea_args"

# CPU accounting snapshot: the machine's /proc/stat cpu line, then this shell's waited-for
# children's user+sys ticks, so the report can say how much CPU other processes took meanwhile.
cpu_snapshot() {
    local stat
    stat="$(cat /proc/$$/stat 2>/dev/null)" || { echo "?"; return; }
    stat="${stat##*) }"   # fields from 3 (state) on; cutime, cstime are fields 16, 17
    read -r -a f <<<"$stat"
    echo "$(head -n 1 /proc/stat 2>/dev/null) ${f[13]} ${f[14]}"
}
snap_before="$(cpu_snapshot)"
echo "model: $model_path; threads: $threads; pp$n_prompt tg$n_gen depth $depth; $rounds interleaved rounds" >&2
for ((i = 1; i <= rounds; i++)); do
    echo "round $i/$rounds: fovea" >&2
    "$fovea" bench -m "$model_path" -t "$threads" -p "$n_prompt" -n "$n_gen" -d "$depth" -r 1 --json \
        "${fovea_extra[@]}" >"$out/fovea.$i.json" 2>"$out/fovea.$i.err" ||
        { cat "$out/fovea.$i.err" >&2; die "fovea bench failed in round $i"; }
    echo "round $i/$rounds: llama.cpp" >&2
    "$llama_bench" -m "$model_path" -t "$threads" -p "$n_prompt" -n "$n_gen" -d "$depth" -r 1 -o json \
        "${llama_extra[@]}" >"$out/llama.$i.json" 2>"$out/llama.$i.err" ||
        { cat "$out/llama.$i.err" >&2; die "llama-bench failed in round $i"; }
done

snap_after="$(cpu_snapshot)"

python3 - "$out" "$rounds" "$snap_before" "$snap_after" <<'PY'
import json, os, statistics, sys

out, rounds = sys.argv[1], int(sys.argv[2])

def foreign_cpu_share(before, after):
    """Fraction of all CPU time during the rounds used by processes other than the two benchmarks."""
    try:
        b, a = before.split(), after.split()
        if b[0] != "cpu" or a[0] != "cpu":
            return None
        nb, na = [int(x) for x in b[1:]], [int(x) for x in a[1:]]
        # cpu user nice system idle iowait irq softirq steal [guest guest_nice] cutime cstime
        def busy_total(v):
            stat, ours = v[:-2], v[-2] + v[-1]
            busy = stat[0] + stat[1] + stat[2] + sum(stat[5:8])
            return busy, busy + stat[3] + stat[4], ours
        bb, tb, ob = busy_total(nb)
        ba, ta, oa = busy_total(na)
        total = ta - tb
        return max(0.0, ((ba - bb) - (oa - ob)) / total) if total > 0 else None
    except (ValueError, IndexError):
        return None

foreign = foreign_cpu_share(sys.argv[3], sys.argv[4])

def load(name):
    path = os.path.join(out, name)
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"compare-llama-cpp: cannot read {path}: {e}")

def key(test, depth):
    return test if not depth else f"{test} @ d{depth}"

fovea, llama = {}, {}   # key -> [t/s per round]
order = []
meta = {}
for i in range(1, rounds + 1):
    for r in load(f"fovea.{i}.json"):
        k = key(r["test"], r.get("depth", 0))
        if k not in order:
            order.append(k)
        fovea.setdefault(k, []).append(float(r["tokens_per_second"]))
        meta.setdefault("fovea_threads", r.get("threads"))
        meta.setdefault("fovea_isa", r.get("isa"))
        meta.setdefault("fovea_kv_bytes", r.get("kv_bytes"))
    for r in load(f"llama.{i}.json"):
        test = f"pp{r['n_prompt']}" if r["n_prompt"] > 0 else f"tg{r['n_gen']}"
        k = key(test, r.get("n_depth", 0))
        if k not in order:
            order.append(k)
        llama.setdefault(k, []).append(float(r["avg_ts"]))
        meta.setdefault("llama_build", r.get("build_commit"))
        meta.setdefault("llama_threads", r.get("n_threads"))
        meta.setdefault("llama_kv", f"{r.get('type_k')}/{r.get('type_v')}, flash_attn {r.get('flash_attn')}, repack {r.get('repack')}")

def med(xs):
    return statistics.median(xs) if xs else None

def fmt(x):
    return "-" if x is None else f"{x:.2f}"

print("| test | fovea t/s (median) | llama.cpp t/s (median) | ratio |")
print("| --- | ---: | ---: | ---: |")
for k in order:
    f, l = med(fovea.get(k, [])), med(llama.get(k, []))
    ratio = f"{f / l:.2f}x" if f is not None and l else "-"
    print(f"| {k} | {fmt(f)} | {fmt(l)} | {ratio} |")
print()
kv = meta.get("fovea_kv_bytes")
kv = f"{kv / 2**20:.1f} MiB" if isinstance(kv, (int, float)) else "?"
print(f"fovea: threads {meta.get('fovea_threads')}, isa {meta.get('fovea_isa')}, kv {kv}; "
      f"llama.cpp {meta.get('llama_build')}: threads {meta.get('llama_threads')}, kv {meta.get('llama_kv')}")
if foreign is not None:
    note = " -- TOO BUSY, the ratio is unreliable: rerun when the machine is quiet" if foreign > 0.10 else ""
    print(f"CPU used by other processes during the rounds: {100 * foreign:.0f}% of the machine{note}")
print(f"ratio = fovea / llama.cpp; medians over {rounds} interleaved rounds of 1 repetition. Per round:")
for k in order:
    print(f"  {k}: fovea {' '.join(fmt(x) for x in fovea.get(k, []))} | "
          f"llama.cpp {' '.join(fmt(x) for x in llama.get(k, []))}")
PY
