"""The ``lm-eval:TASK`` objective: any lm-evaluation-harness task, through its Python API, on the loaded model.

Optional: ``pip install 'pytest-swapkl[lm-eval]'``. A candidate set S is evaluated by running the harness's
``simple_evaluate`` on the already loaded model with S's layers removed (``engine.reference.permuted_layers``,
restored in ``finally``) and the KV cache off (the kept layers' cache indices are no longer 0..N-1). The cost
is the task's error rate, 1 - acc, with the per-document ``acc`` as the resampling units. This is the one
objective whose evaluations do not go through ``engine.measure``: the harness runs its own forward passes
(its loglikelihood requests), so candidates share no base pass; ``Spend.layer_passes`` counts none for it.

TASK is a task name the harness knows, or one defined in a YAML file of a folder given as ``include_path``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..errors import InputError
from .objectives import LayerSet, Spend


class LmEvalError(InputError):
    pass


class LmEvalObjective:
    """The objective's arithmetic (error rate of per-document acc), in the shape ``Evaluator`` expects."""

    def __init__(self, task: str):
        self.name, self.task = f"lm-eval:{task}", task

    def cost(self, units: np.ndarray) -> float:
        return float(np.mean(units))

    def resampled_costs(self, units: np.ndarray, indices: np.ndarray) -> np.ndarray:
        return units[indices].mean(axis=1)

    unit_name = "error rate"


class LmEvalEvaluator:
    """Costs of layer sets under one lm-evaluation-harness task (the ``Evaluator`` interface)."""

    def __init__(self, model: Any, tokenizer: Any, task: str, n_layers: int, *, include_path: Optional[str] = None,
                 limit: Optional[int] = None, batch_size: int = 8):
        try:
            import lm_eval  # noqa: F401
        except ImportError:
            raise LmEvalError("--objective lm-eval:TASK needs lm-evaluation-harness: "
                              "pip install 'pytest-swapkl[lm-eval]'") from None
        self.model, self.tokenizer, self.n_layers = model, tokenizer, n_layers
        self.objective = LmEvalObjective(task)
        self.include_path, self.limit, self.batch_size = include_path, limit, batch_size
        self.measured: dict[LayerSet, np.ndarray] = {}

    def _errors(self, removed: LayerSet) -> np.ndarray:
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager

        from ..engine.reference import permuted_layers

        order = [layer for layer in range(self.n_layers) if layer not in set(removed)]
        config = self.model.config
        use_cache = getattr(config, "use_cache", None)
        try:
            config.use_cache = False
            with permuted_layers(self.model, order):
                device = str(next(self.model.parameters()).device)
                lm = HFLM(pretrained=self.model, tokenizer=self.tokenizer, batch_size=self.batch_size, device=device)
                manager = TaskManager(include_path=self.include_path) if self.include_path else TaskManager()
                result = simple_evaluate(model=lm, tasks=[self.objective.task], task_manager=manager,
                                         limit=self.limit, log_samples=True, bootstrap_iters=0, verbosity="ERROR")
        finally:
            config.use_cache = use_cache
        samples = result["samples"].get(self.objective.task)
        if not samples:
            raise LmEvalError(f"lm-eval task {self.objective.task!r} returned no samples: check its name")
        samples = sorted(samples, key=lambda sample: sample["doc_id"])
        if "acc" not in samples[0]:
            raise LmEvalError(f"lm-eval task {self.objective.task!r} has no 'acc' metric: use a multiple-choice task")
        return 1.0 - np.array([float(sample["acc"]) for sample in samples])

    def costs(self, sets: Sequence[LayerSet], spend: Optional[Spend] = None) -> list[float]:
        sets = [tuple(sorted(s)) for s in sets]
        for layers in dict.fromkeys(sets):
            if layers not in self.measured:
                self.measured[layers] = self._errors(layers)
        if spend is not None:
            new = [s for s in dict.fromkeys(sets) if s not in spend.requested]
            if new:
                spend.requested.update(new)
                spend.evaluations += len(new)
                spend.calls += len(new)
        return [self.objective.cost(self.measured[s]) for s in sets]

    def units(self, layers: LayerSet) -> np.ndarray:
        layers = tuple(sorted(layers))
        if layers not in self.measured:
            self.costs([layers])
        return self.measured[layers]

    def base_units(self) -> np.ndarray:
        return self.units(())

    def base_cost(self) -> float:
        return self.objective.cost(self.base_units())
