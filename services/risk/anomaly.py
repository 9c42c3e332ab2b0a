"""The online anomaly model: one river Half-Space Trees model per tenant, in process, learning from the traffic
each replica assesses. Its score (0-100) is one more feature, ``model.anomaly_score``; rule sets count it only when
``anomaly_model`` is ``active`` (shadow mode records it without counting)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

from river import anomaly

from services.risk import limits

HST_TREES = 10
HST_HEIGHT = 6
HST_WINDOW_SIZE = 100


class _TenantModel:
    def __init__(self, seed: int) -> None:
        self.model = anomaly.HalfSpaceTrees(
            n_trees=HST_TREES, height=HST_HEIGHT, window_size=HST_WINDOW_SIZE, seed=seed
        )
        self.samples = 0


class AnomalyModels:
    """Bounded (least recently used tenants are dropped and start over)."""

    def __init__(self, seed: int = 7) -> None:
        self._seed = seed
        self._models: OrderedDict[str, _TenantModel] = OrderedDict()

    def _model(self, organization_id: str) -> _TenantModel:
        tenant = self._models.get(organization_id)
        if tenant is None:
            tenant = _TenantModel(self._seed)
            self._models[organization_id] = tenant
            if len(self._models) > limits.ANOMALY_MODELS_MAX:
                self._models.popitem(last=False)
        else:
            self._models.move_to_end(organization_id)
        return tenant

    def score_and_learn(self, organization_id: str, vector: Mapping[str, float]) -> int:
        """Scores, then learns the sample. 0 until the model has seen ``ANOMALY_WARMUP_SAMPLES`` payments."""
        tenant = self._model(organization_id)
        score = 0
        if tenant.samples >= limits.ANOMALY_WARMUP_SAMPLES:
            raw = tenant.model.score_one(dict(vector))  # type: ignore[no-untyped-call]
            score = round(float(raw) * 100)
        tenant.model.learn_one(dict(vector))  # type: ignore[no-untyped-call]
        tenant.samples += 1
        return max(0, min(100, score))
