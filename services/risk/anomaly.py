"""The online anomaly model: one river Half-Space Trees model per tenant, in process. It learns from the ledger
event stream (each posted transfer, with the features its account had just before it — what Assess saw) and
scores at Assess time. Its score (0-100) is one more feature, ``model.anomaly_score``; rule sets count it only when
``anomaly_model`` is ``active`` (shadow mode records it without counting). Each replica learns from the events its
consumer receives (the group shares them out), and a restart starts the model over."""

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

    def score(self, organization_id: str, vector: Mapping[str, float]) -> int:
        """0 (benign) to 100; 0 until the tenant's model has learned ``ANOMALY_WARMUP_SAMPLES`` payments."""
        tenant = self._models.get(organization_id)
        if tenant is None or tenant.samples < limits.ANOMALY_WARMUP_SAMPLES:
            return 0
        raw = tenant.model.score_one(dict(vector))  # type: ignore[no-untyped-call]
        return max(0, min(100, round(float(raw) * 100)))

    def learn(self, organization_id: str, vector: Mapping[str, float]) -> None:
        tenant = self._model(organization_id)
        tenant.model.learn_one(dict(vector))  # type: ignore[no-untyped-call]
        tenant.samples += 1

    def samples(self, organization_id: str) -> int:
        tenant = self._models.get(organization_id)
        return 0 if tenant is None else tenant.samples
