"""Teacher and student estimators, distillation losses and the distillation cascade."""

from sleepkd.utils._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "EEGTeacher": "._estimators",
        "ECGStudent": "._estimators",
        "DistilledECGStager": "._stager",
        "EEGNightTeacher": "._night_estimators",
        "ECGNightStudent": "._night_estimators",
        "SeedEnsemble": "._ensemble",
        "attention_map": "._losses",
        "attention_transfer_loss": "._losses",
        "distillation_loss": "._losses",
        "weighted_cross_entropy": "._losses",
        "feature_group_weights": "._losses",
        "ClassificationLoss": "._losses",
        "DistillationLoss": "._losses",
        "AttentionTransferLoss": "._losses",
        "decoupled_kd_loss": "._losses",
        "feature_distillation_loss": "._losses",
        "average_teacher_logits": "._losses",
        "DecoupledDistillationLoss": "._losses",
        "FeatureDistillationLoss": "._losses",
        "STRATEGIES": "._stager",
    },
)
