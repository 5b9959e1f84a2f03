"""Every scoring use case the service serves, in one place: a new use case is a module and a line here."""

from __future__ import annotations

from app.scoring.use_cases.base import UseCase
from app.scoring.use_cases.churn import CHURN
from app.scoring.use_cases.diagnosis import DIAGNOSIS
from app.scoring.use_cases.leads import LEAD_RANKING, LEADS
from app.scoring.use_cases.products import PRODUCTS
from app.scoring.use_cases.value import VALUE

USE_CASES: tuple[UseCase, ...] = (CHURN, LEADS, LEAD_RANKING, PRODUCTS, DIAGNOSIS, VALUE)
