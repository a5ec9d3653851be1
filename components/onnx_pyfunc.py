"""MLflow "models from code" entry point of an exported `<name>-onnx` model: no pickled
Python objects and no torch at load time (see components.export.register_export)."""

import mlflow.models
import mlflow.pyfunc

from components.onnx_runtime import PeftopsOnnxClassifier


class PeftopsOnnxPyfuncModel(PeftopsOnnxClassifier, mlflow.pyfunc.PythonModel):
    """`PeftopsOnnxClassifier` as an MLflow `PythonModel`."""


mlflow.models.set_model(PeftopsOnnxPyfuncModel())
