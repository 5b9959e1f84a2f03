"""Database models (SQLAlchemy 2.0, typed). API shapes live in app/schemas; all SQL in app/repositories."""

from app.models.base import Base
from app.models.customer import Customer
from app.models.lease import Lease
from app.models.line_customer import LineCustomer
from app.models.outcome import Outcome
from app.models.prediction import PredictionRow
from app.models.profile_scores import StoredProfileScores
from app.models.scored_record import ScoredRecord

__all__ = [
    "Base",
    "Customer",
    "Lease",
    "LineCustomer",
    "Outcome",
    "PredictionRow",
    "ScoredRecord",
    "StoredProfileScores",
]
