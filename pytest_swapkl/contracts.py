"""Contracts: the paper's experiment families as named presets of audit options (`--contract NAME`).

    swapkl audit MODEL --data prompts.txt --contract last-token      # GPT-2 / scaling / Pythia scripts
    swapkl list contracts                                            # every contract and what it reproduces

A contract fixes how the paper measured (which positions, pads, which replacement direction, which
pairs, dtype, the pair-to-set rule, the held-out evaluator); the user brings the text. An option given
on the command line, in an ini file or a marker wins over the contract, and the contract wins over the
option's default. Values are written as on the command line and parsed by the option's own converter,
so a contract can say nothing an option would refuse (a test parses every one).
No torch here: pytest reads this at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .errors import InputError
from .registry import Registry


@dataclass(frozen=True)
class Contract:
    reproduces: str  # the paper's figure or table and the script it comes from
    values: Mapping[str, str]  # option name -> value as written on the command line
    reads_prompts: bool = False  # the experiment measures prompts one by one (--data prompts:FILE)

    def describe(self) -> str:
        """The options the contract sets, as flags: what `swapkl list contracts` prints."""
        return " ".join(f"--{name.replace('_', '-')} {value}" for name, value in self.values.items())


CONTRACTS: Registry[Contract] = Registry("contract")


def _contract(name: str, summary: str, reproduces: str, reads_prompts: bool = False, **values: str) -> None:
    contract = Contract(reproduces, values, reads_prompts)
    CONTRACTS.register(name, contract, f"{summary}; reproduces {reproduces}: {contract.describe()}", __name__)


# The paper's scripts (Gpgabriel25/ProtocolGapDiagnostic), read side by side with this tool: docs/reproduction.md.
_contract("last-token", "the next-token distribution at each prompt's last real token, prompts unpadded, "
          "replacement the larger direction (Definition 1), float32",
          "the GPT-2-Medium top pairs and the scaling rows (tab:top_pairs, tab:scaling; scaling_bisimulation.py, "
          "pythia_bisimulation.py)",
          positions="last", pads="out", replacement_reduce="max", dtype="float32", pairs="all",
          reads_prompts=True, seq_len="128")
_contract("masked-mean", "every real token of right-padded prompts (pads left out of the mean), replacement the "
          "larger direction, pairs up to three layers apart, bfloat16",
          "the Qwen3-8B scaling rows and their bootstrap appendix (tab:scaling; qwen3_8b_tpu.py)",
          positions="all", pads="out", replacement_reduce="max", dtype="bfloat16", pairs="window:3",
          reads_prompts=True, seq_len="128")
_contract("trajectory", "every position of padded prompts, pads included, replacement one direction (slot i "
          "runs layer j), adjacent pairs, float32",
          "the Pythia training trajectory figure (tpu_pythia_protocol_gap_trajectory.py)",
          positions="all", pads="in", replacement_reduce="ji", dtype="float32", pairs="adjacent",
          reads_prompts=True, seq_len="128")
_contract("llama-adjacent", "every position of padded prompts, pads included, replacement one direction (slot i "
          "runs layer i+1), adjacent pairs, bfloat16",
          "the Llama-3.1-8B scaling rows (tab:scaling; tpu_llama_bisimulation.py)",
          positions="all", pads="in", replacement_reduce="ji", dtype="bfloat16", pairs="adjacent",
          reads_prompts=True, seq_len="64")
_contract("matched-eval", "removal sets by the min-partner rule with spacing 1, costed by sliding-window "
          "perplexity (window 512, stride 256) on the first 5,000 words of the held-out text",
          "the matched Qwen3/Llama pruning tables (tab:skip_qwen, tab:skip_llama; matched_eval_qwen3.py)",
          pair_rule="min-partner", spacing="1", heldout_window="512", heldout_stride="256", heldout_words="5000")
_contract("gpt2-removal", "removal costed by sliding-window perplexity (window 1024, stride 512) on the first "
          "20,000 words of the held-out text, min-partner rule with spacing 1",
          "the GPT-2-Medium removal baselines (tab:skip; wikitext_ppl.py, laco_sleb_baselines.py)",
          pair_rule="min-partner", spacing="1", heldout_window="1024", heldout_stride="512",
          heldout_words="20000")


def check_data_fits(name: Any, data: str) -> None:
    """A contract that measures prompts one by one refuses a chunked text stream, in one line."""
    if name is None or not CONTRACTS.get(str(name)).reads_prompts or str(data).startswith("prompts:"):
        return
    raise InputError(f"--contract {name} measures prompts one by one, as the paper's script does, but --data {data} "
                     "is read as one text stream cut into --seq-len chunks: give the prompts with --data "
                     "prompts:FILE (one prompt per line of a .txt file, or per record of a .jsonl file)")


def contract_values(name: Any) -> Mapping[str, str]:
    """The option values contract `name` sets (none for None); an unknown name is one line with the closest."""
    if name is None:
        return {}
    return CONTRACTS.get(str(name)).values
