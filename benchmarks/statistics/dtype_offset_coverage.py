"""Do a bfloat16 audit's KL intervals hold a float32 audit's estimates of the same probes on the same sequences,
as measured and as carried by the audit's dtype offset (analysis/dtype_offset.py)?

    swapkl audit demo --dtype bfloat16 --device cpu --pairs all --tokens 2048 --seq-len 128 --no-resume --json B
    swapkl audit demo --dtype float32 --device cpu --pairs all --tokens 2048 --seq-len 128 --no-resume --json F
    python benchmarks/statistics/dtype_offset_coverage.py B F

The bfloat16 file holds the carried intervals; the measured ones are the rule undone
([low (1 + offset_high), high (1 + offset_low)]).
"""

import json
import sys

import numpy as np


def main(bfloat16_path: str, float32_path: str) -> None:
    low_dtype, wide = (json.load(open(path)) for path in (bfloat16_path, float32_path))
    offset = low_dtype["dtype_offset"]
    low, high = offset["ci"]
    rows = [(a["ci"][key], b[key]) for a, b in zip(low_dtype["pairs"], wide["pairs"])
            for key in ("replacement_ij", "replacement_ji", "interchange", "replacement")]
    rows += [(a["ci"], b["kl"]) for a, b in zip(low_dtype["removal"], wide["removal"])]
    carried = sum(lo <= value <= hi for (lo, hi), value in rows)
    measured = sum(lo * (1 + high) <= value <= hi * (1 + low) for (lo, hi), value in rows)
    widening = np.median([(hi - lo) / (hi * (1 + low) - lo * (1 + high)) for (lo, hi), _ in rows])
    print(f"offset {offset['relative']:+.4%} [95% CI {low:+.4%}, {high:+.4%}] over {len(offset['probes'])} probes, "
          f"{offset['seconds']:.1f} s; {len(rows)} KL intervals hold the float32 estimate: measured {measured}, "
          f"carried {carried}; median carried / measured width {widening:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
