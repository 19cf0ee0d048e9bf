#!/usr/bin/env python3
"""Scalar -> AVX2 -> AVX-512 speedup table from the criterion results of benches/kernels.rs.

Reads CRITERION_DIR/<group>/<kernel>/<isa>/new/{benchmark,estimates}.json (what
`cargo bench --bench kernels` writes; CRITERION_DIR defaults to $CARGO_TARGET_DIR/criterion,
else target/criterion) and prints one markdown table per group: GB/s of weights (or data)
streamed per ISA, from criterion's median time, then each ISA's speedup over scalar (over the
first ISA measured in groups that skip scalar).

Usage: benches/speedup-table.py [CRITERION_DIR]
"""
import json
import os
import sys

GROUPS = ["vec_dot", "matvec_l2", "matvec_dram", "prompt_tile", "quantize", "ops"]
# Column order; labels not listed here (new `QuantKernels::variants` entries) follow them.
ISAS = ["scalar", "avx2", "avx2-vnni", "avx512", "avx512-vnni", "neon", "neon-dotprod"]


def load(root):
    """{group: {kernel: {isa: GB/s}}} and the kernel order as first seen per group."""
    table, order = {}, {}
    for dirpath, _dirs, files in os.walk(root):
        if not dirpath.endswith(os.sep + "new") or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        group, kernel, isa = bench["group_id"], bench["function_id"], bench["value_str"]
        nbytes = (bench.get("throughput") or {}).get("Bytes")
        ns = est["median"]["point_estimate"]
        if nbytes is None or ns <= 0:
            continue
        table.setdefault(group, {}).setdefault(kernel, {})[isa] = nbytes / ns  # bytes/ns = GB/s
        order.setdefault(group, [])
        if kernel not in order[group]:
            order[group].append(kernel)
    return table, order


def kernel_key(kernel):
    """Sort like the bench declares them: type, then row length."""
    name, _, n = kernel.rpartition("-")
    return (name, int(n)) if n.isdigit() else (kernel, 0)


def main():
    default = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
    root = sys.argv[1] if len(sys.argv) > 1 else default
    if not os.path.isdir(root):
        sys.exit(f"speedup-table: no criterion results in {root} (run: cargo bench --bench kernels)")
    table, _order = load(root)
    for group in GROUPS + sorted(set(table) - set(GROUPS)):
        kernels = table.get(group)
        if not kernels:
            continue
        seen = sorted({i for v in kernels.values() for i in v})
        isas = [i for i in ISAS if i in seen] + [i for i in seen if i not in ISAS]
        # Speedups over scalar; groups run without scalar (matvec_dram) compare with the first ISA.
        base_isa = isas[0]
        others = isas[1:]
        print(f"### {group}\n")
        head = ["kernel"] + [f"{i} GB/s" for i in isas] + [f"{i} / {base_isa}" for i in others]
        print("| " + " | ".join(head) + " |")
        print("| --- |" + " ---: |" * (len(head) - 1))
        for kernel in sorted(kernels, key=kernel_key):
            v = kernels[kernel]
            cells = [kernel] + [f"{v[i]:.2f}" if i in v else "-" for i in isas]
            base = v.get(base_isa)
            cells += [f"{v[i] / base:.1f}" if base and i in v else "-" for i in others]
            print("| " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()
