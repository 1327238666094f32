"""Every cap on what a file written by someone else may make swapkl read or allocate, in one table.

A number read from a file sizes nothing before it is checked against what the file itself states and
against these caps (docs/reliability.md). Each is far above any real model or audit and far below what
would exhaust a machine. No imports: every layer may read them.
"""

MIB = 1 << 20

MAX_JSON_BYTES = 64 * MIB  # one JSON or XML file: cache entry, config.json, shard index, junit XML, baseline
MAX_TEXT_BYTES = 1024 * MIB  # calibration text of one source (.txt file or folder, .jsonl): tokenized in memory
MAX_ARRAY_BYTES = 2048 * MIB  # one pre-tokenized .npy / .pt file
MAX_TOKEN_IDS = MAX_ARRAY_BYTES // 8  # ids of one .npy / .pt file, counted decoded (each becomes an int64)
MAX_JOURNAL_BYTES = 4096 * MIB  # one resume journal
MAX_TOKENIZER_BYTES = 512 * MIB  # one tokenizer file (tokenizer.json, vocab, merges; the largest today: ~35 MB)
MAX_SAFETENSORS_HEADER = 100 * 1000 * 1000  # safetensors' own limit on the JSON header of a weights file

MAX_LAYERS = 1024  # decoder layers of a model, in config.json or implied by a junit file (the largest today: ~128)
MAX_VOCAB = 1 << 24  # vocabulary rows (largest today: ~262k)
MAX_WIDTH = 1 << 18  # hidden, intermediate and head sizes
MAX_HEADS = 1 << 12  # attention heads
MAX_POSITIONS = 1 << 26  # positions a config may claim (some claim 10M)
MAX_BUFFER_BYTES = 4096 * MIB  # a model's buffers (causal masks, position tables) that no weights file holds
MAX_SHARDS = 100_000  # files a sharded checkpoint's index may name
MAX_TOKEN_ID = (1 << 63) - 1  # the largest token id int64 holds
MAX_RESAMPLED_VALUES = 1 << 27  # bootstrap resamples x sequences (or probes): 1 GiB per float64 array of them
