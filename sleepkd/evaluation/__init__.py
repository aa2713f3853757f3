"""Experiments, figures and saved models.

- :func:`run_experiment`: subject-wise cross-validated comparison of the EEG teacher,
  the ECG students of every distillation strategy and reference models, returning an
  :class:`ExperimentResult` (tables, CSV, figures).
- :func:`plot_confusion_matrices`, :func:`plot_hypnograms`: figures of a result
  (``pip install "sleepkd[plot]"``).
- :class:`StagingModel`, :func:`save_model`, :func:`load_model`: a fitted ECG stager
  with its input contract, ready to stage a new recording; :class:`NightStagingModel`
  the same for the night-level models (beats or an ECG in, written as a safe
  ``.sleepkd`` file by :func:`sleepkd.io.save_model_file`).
- :func:`night_inputs`, :func:`night_student`, :func:`night_teacher`: the measured
  night-level recipe used by ``sleepkd train``, the demo and the results page.
"""

from sleepkd.utils._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "run_experiment": "._runner",
        "ExperimentResult": "._runner",
        "subject_folds": "._runner",
        "data_provenance": "._runner",
        "plot_confusion_matrices": "._plots",
        "plot_hypnograms": "._plots",
        "StagingModel": "._bundle",
        "save_model": "._bundle",
        "load_model": "._bundle",
        "NightStagingModel": "._night_bundle",
        "night_inputs": "._recipes",
        "night_student": "._recipes",
        "night_teacher": "._recipes",
    },
)
