"""An experiment of issue 21, measured and not adopted: the head product and the KL fold in one Triton kernel, so
a probe's logits never reach memory. benchmarks/fused_head_bench.py times it against the engine's chunked path.

The chunked path (``divergence.chunk_step``) writes every probe logit to memory in the model's dtype, then reads
it back with the base's logit to fold it into the running sums: on Gemma-3's 262k vocabulary that fold was 30% of
the probes' GPU time (docs/benchmarks.md, "Where the probes' time goes"). Here each program computes a
[rows x columns] tile of logits with ``tl.dot``, rounds it to the model's dtype exactly as the head's own product
would leave it, and folds it at once into per-row partial sums (largest logit, sum of exponentials, sum of p_v z_v,
the label's logit). The partials of the column groups are combined in float64 afterwards, as the chunked path
combines chunks. Same arithmetic as ``chunk_step`` to the float32 rounding of the sums' order (the benchmark's
"max rel KL diff" column: 1e-7 to 3e-7 in bfloat16 on the H200); heads with a bias or a logit transform are not
handled.

Measured on the H200 (docs/benchmarks.md, "The head + KL step alone"): 1.6x slower than the chunked path at its
best tiling. The fold's exponentials and reductions run between the matrix products of each tile instead of
beside them (no warp specialisation), so the products reach about 210 TFLOP/s where cuBLAS reaches 570-650.
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

COLUMNS_PER_PROGRAM = 512  # vocabulary columns one program folds: fixes the partials' shape for every tiling


def fold(prepared: torch.Tensor, weight: torch.Tensor, base_logits: torch.Tensor, shift: torch.Tensor,
         base_lse: torch.Tensor, labels: torch.Tensor, tiling: Optional[dict] = None):
    """The four sums ``divergence.kl_and_nll`` folds chunk by chunk, in one kernel launch (CUDA tensors).

    prepared: [..., batch, seq, hidden] (the head's input; leading probe axes are stacked probes);
    base_logits: [batch, seq, vocab] in the model's dtype; shift, base_lse: [batch, seq] float32;
    labels: [batch, seq - 1]. Returns (running_max float32, running_sum float64, expected float64,
    label_logit float32) shaped like the chunked path's.
    """
    rows_shape = prepared.shape[:-1]
    hidden = prepared.shape[-1]
    vocab = weight.shape[0]
    batch, seq = base_logits.shape[:2]
    x = prepared.reshape(-1, hidden).contiguous()
    rows, base_rows = x.shape[0], batch * seq
    # One label per base row; the last position has none (-1), as the chunked path never picks it.
    row_labels = torch.cat([labels.to(torch.int32), labels.new_full((batch, 1), -1, dtype=torch.int32)], 1)
    tiling = dict(tiling or {})
    columns = tiling.pop("COLUMNS", COLUMNS_PER_PROGRAM)
    group_m = tiling.pop("GROUP_M", 8)
    groups = triton.cdiv(vocab, columns)
    part_max = torch.empty(groups, rows, device=x.device, dtype=torch.float32)
    part_sum = torch.empty_like(part_max)
    part_expected = torch.empty_like(part_max)
    label_logit = torch.zeros(rows, device=x.device, dtype=torch.float32)
    grid = lambda meta: (triton.cdiv(rows, meta["BLOCK_M"]) * groups,)  # noqa: E731
    kernel = _fused_head_kl.fn if tiling else _fused_head_kl  # the plain kernel, or the autotuned one
    kernel[grid](
        x, weight.contiguous(), base_logits.reshape(base_rows, vocab).contiguous(),
        shift.reshape(-1).contiguous(), base_lse.reshape(-1).contiguous(), row_labels.reshape(-1).contiguous(),
        part_max, part_sum, part_expected, label_logit,
        rows, base_rows, vocab, groups,
        HIDDEN=hidden, COLUMNS=columns, IEEE=x.dtype == torch.float32, GROUP_M=group_m,
        **tiling,
    )
    running_max = part_max.amax(0)
    # exp(-inf - -inf) is NaN only where a row's every logit is -inf, which the caller rejects anyway.
    scale = torch.exp(part_max - running_max)
    running_sum = (part_sum.double() * scale.double()).sum(0)
    expected = part_expected.double().sum(0)
    label_logit = label_logit.reshape(rows_shape)[..., :-1]
    return running_max.reshape(rows_shape), running_sum.reshape(rows_shape), expected.reshape(rows_shape), label_logit


def _configs():
    # Tile shapes of Hopper-class bf16 products; small-K heads (576-2048 wide) want tall tiles and few stages.
    shapes = [(128, 128, 64, 3, 8), (128, 128, 64, 4, 4), (64, 128, 64, 4, 4), (128, 256, 64, 3, 8),
              (256, 128, 64, 3, 8), (128, 64, 64, 4, 4)]
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n, "BLOCK_K": k}, num_stages=s, num_warps=w)
            for m, n, k, s, w in shapes]


@triton.autotune(configs=_configs(), key=["vocab", "HIDDEN", "IEEE"])
@triton.jit
def _fused_head_kl(x_ptr, w_ptr, base_ptr, shift_ptr, lse_ptr, label_ptr,
                   max_ptr, sum_ptr, expected_ptr, label_out_ptr,
                   rows, base_rows, vocab, groups,
                   HIDDEN: tl.constexpr, COLUMNS: tl.constexpr, IEEE: tl.constexpr, GROUP_M: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    # Programs run in bands of GROUP_M row blocks, rows varying fastest (Triton's grouped ordering): those
    # in flight at once cover a few row blocks and a few dozen column groups, whose rows and weight slices
    # stay in L2, instead of sweeping the whole head's weight from memory for every block of rows.
    pid = tl.program_id(0)
    row_blocks = (rows + BLOCK_M - 1) // BLOCK_M
    per_band = GROUP_M * groups
    first_block = (pid // per_band) * GROUP_M
    band_height = tl.minimum(row_blocks - first_block, GROUP_M)
    pid_m = first_block + (pid % per_band) % band_height
    group = (pid % per_band) // band_height
    row = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = row < rows
    row_at = row.to(tl.int64)
    base_row = (row % base_rows).to(tl.int64)  # stacked probes repeat the base's rows; rows x vocab passes 2^31
    shift = tl.load(shift_ptr + base_row, mask=row_ok, other=0.0)
    base_lse = tl.load(lse_ptr + base_row, mask=row_ok, other=0.0)
    label = tl.load(label_ptr + base_row, mask=row_ok, other=-1)

    run_max = tl.full([BLOCK_M], float("-inf"), tl.float32)
    run_sum = tl.zeros([BLOCK_M], tl.float32)
    run_expected = tl.zeros([BLOCK_M], tl.float32)
    k_offsets = tl.arange(0, BLOCK_K)
    for n_start in range(group * COLUMNS, group * COLUMNS + COLUMNS, BLOCK_N):
        col = n_start + tl.arange(0, BLOCK_N)
        col_ok = col < vocab
        acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
        for k_start in range(0, HIDDEN, BLOCK_K):
            k = k_start + k_offsets
            k_ok = k < HIDDEN
            x = tl.load(x_ptr + row_at[:, None] * HIDDEN + k[None, :], mask=row_ok[:, None] & k_ok[None, :],
                        other=0.0)
            w = tl.load(w_ptr + col[:, None] * HIDDEN + k[None, :], mask=col_ok[:, None] & k_ok[None, :],
                        other=0.0)
            if IEEE:
                acc += tl.dot(x, tl.trans(w), input_precision="ieee")
            else:
                acc += tl.dot(x, tl.trans(w))
        # The model's head leaves its logits in its own dtype; the chunked path upcasts those.
        z = acc.to(x_ptr.dtype.element_ty).to(tl.float32) - shift[:, None]
        z = tl.where(col_ok[None, :], z, float("-inf"))
        tile_ok = row_ok[:, None] & col_ok[None, :]
        base_z = tl.load(base_ptr + base_row[:, None] * vocab + col[None, :], mask=tile_ok, other=float("-inf"))
        p = tl.exp(base_z.to(tl.float32) - shift[:, None] - base_lse[:, None])
        run_expected += tl.sum(tl.where(p > 0, p * z, 0.0), axis=1)
        new_max = tl.maximum(run_max, tl.max(z, axis=1))
        safe_max = tl.where(new_max == float("-inf"), 0.0, new_max)  # no exp(-inf - -inf) below
        run_sum = run_sum * tl.exp(run_max - safe_max) + tl.sum(tl.exp(z - safe_max[:, None]), axis=1)
        run_max = new_max
        hit = col[None, :] == label[:, None]
        picked = tl.sum(tl.where(hit, z, 0.0), axis=1)
        in_tile = (label >= n_start) & (label < n_start + BLOCK_N)
        tl.store(label_out_ptr + row, picked, mask=row_ok & in_tile)
    tl.store(max_ptr + group * rows + row, run_max, mask=row_ok)
    tl.store(sum_ptr + group * rows + row, run_sum, mask=row_ok)
    tl.store(expected_ptr + group * rows + row, run_expected, mask=row_ok)
