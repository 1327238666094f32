"""GPT-2: blocks in `transformer.h`, learned absolute positions added before the first block."""

from .base import Adapter

ADAPTER = Adapter(model_types=("gpt2",), layers="transformer.h", final=("transformer.ln_f",))
