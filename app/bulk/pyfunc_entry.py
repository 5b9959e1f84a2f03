"""MLflow's entry point to the record model (models from code): stored with every registered version and run by
MLflow when the version loads as pyfunc, never imported by this package."""

from mlflow.models import set_model

from app.bulk.record_model import RecordModel

set_model(RecordModel())
