"""MLflow "models from code" entry point: logged with each model, so loading it needs no
pickled Python objects (see components.registry.log_pyfunc_model)."""

import mlflow.models
import mlflow.pyfunc

from components.registry import PeftopsClassifier


class PeftopsPyfuncModel(PeftopsClassifier, mlflow.pyfunc.PythonModel):
    """`PeftopsClassifier` as an MLflow `PythonModel`."""


mlflow.models.set_model(PeftopsPyfuncModel())
