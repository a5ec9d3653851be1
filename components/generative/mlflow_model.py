"""MLflow "models from code" entry point of generative bundles (no pickled Python objects)."""

import mlflow.models
import mlflow.pyfunc

from components.generative.serving import PeftopsGenerator


class PeftopsGeneratorPyfunc(PeftopsGenerator, mlflow.pyfunc.PythonModel):
    """`PeftopsGenerator` as an MLflow `PythonModel`."""


mlflow.models.set_model(PeftopsGeneratorPyfunc())
