"""Customer value in a non-contractual setting: BG/NBD for purchases and Gamma-Gamma for spend per purchase.

- BG/NBD: P. S. Fader, B. G. S. Hardie, K. L. Lee (2005), "'Counting Your Customers' the Easy Way: An
  Alternative to the Pareto/NBD Model", Marketing Science 24(2):275-284. While alive a customer buys at a
  Poisson rate lambda ~ Gamma(r, alpha); after each purchase it drops out with probability p ~ Beta(a, b).
  Likelihood: eq. (6); expected purchases in (T, T+t] given (x, t_x, T): eq. (10); P(alive): eq. (11) there
  and in Fader & Hardie's note "Computing P(alive) using the BG/NBD model" (2008).
- Gamma-Gamma: P. S. Fader, B. G. S. Hardie, K. L. Lee (2005), "RFM and CLV: Using Iso-Value Curves for
  Customer Base Analysis", J. Marketing Research 42(4):415-430; and Fader & Hardie (2013), "The Gamma-Gamma
  Model of Monetary Value". The spend of a purchase is Gamma(p, nu), nu ~ Gamma(q, gamma) across customers,
  independent of the purchase process; fitted on the customers with at least one repeat purchase.

Both are fitted by direct maximum likelihood with scipy: every parameter optimised on the log scale (so it
stays positive), the likelihoods written with gammaln/betaln and log-sum-exp so no term overflows.
Summaries are per customer: x = repeat purchases (purchase periods after the first), t_x = time of the last
purchase and T = time of the cut-off, both from the first purchase, in the model's time unit; zbar = mean spend
of the repeat purchases.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

FloatArray = npt.NDArray[np.float64]


class FitError(ValueError):
    """The likelihood could not be maximised (too few customers, degenerate summaries)."""


def _optimise(negative_ll: Any, start: FloatArray) -> FloatArray:
    result = minimize(negative_ll, start, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * len(start))
    if not np.isfinite(result.fun):
        raise FitError(f"the likelihood is not finite at the optimum: {result.message}")
    # Polish with Nelder-Mead from L-BFGS-B's optimum: its gradient is numerical, its stop a little early.
    polished = minimize(
        negative_ll, result.x, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000}
    )
    best = polished.x if polished.fun <= result.fun else result.x
    return np.exp(np.asarray(best, dtype=np.float64))


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float

    @staticmethod
    def log_likelihood(
        params: FloatArray, x: FloatArray, t_x: FloatArray, big_t: FloatArray, weights: FloatArray
    ) -> float:
        """Sum of each customer's log-likelihood, eq. (6) of Fader, Hardie & Lee (2005)."""
        r, alpha, a, b = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + big_t)
        repeat = x > 0
        a4 = np.full_like(x, -np.inf)
        a4[repeat] = np.log(a) - np.log(b + x[repeat] - 1) - (r + x[repeat]) * np.log(alpha + t_x[repeat])
        return float(np.sum(weights * (a1 + a2 + np.logaddexp(a3, a4))))

    @classmethod
    def fit(cls, x: FloatArray, t_x: FloatArray, big_t: FloatArray) -> BgNbd:
        x, t_x, big_t, weights = _grouped(x, t_x, big_t)
        scale = float(np.mean(big_t)) or 1.0

        def negative(log_params: FloatArray) -> float:
            value = -cls.log_likelihood(np.exp(log_params), x, t_x, big_t, weights)
            return value if np.isfinite(value) else 1e300

        r, alpha, a, b = _optimise(negative, np.log(np.array([0.5, scale, 1.0, 1.0])))
        return cls(float(r), float(alpha), float(a), float(b))

    def p_alive(self, x: FloatArray, t_x: FloatArray, big_t: FloatArray) -> FloatArray:
        """P(still alive at T | x, t_x, T): 1 for a customer who never repeated (it cannot have dropped out)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        log_odds = np.full_like(x, -np.inf)
        repeat = x > 0
        log_odds[repeat] = (
            np.log(a)
            - np.log(b + x[repeat] - 1)
            + (r + x[repeat]) * (np.log(alpha + big_t[repeat]) - np.log(alpha + t_x[repeat]))
        )
        return np.asarray(1.0 / (1.0 + np.exp(log_odds)), dtype=np.float64)

    def expected_purchases(self, t: float, x: FloatArray, t_x: FloatArray, big_t: FloatArray) -> FloatArray:
        """E[purchases in (T, T+t] | x, t_x, T], eq. (10) of Fader, Hardie & Lee (2005)."""
        if t <= 0:
            return np.zeros_like(x)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + big_t + t)
        ratio = np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t)))
        series = hyp2f1(r + x, b + x, a + b + x - 1, z)
        numerator = (a + b + x - 1) / (a - 1) * (1 - ratio * series)
        repeat = x > 0
        odds = np.zeros_like(x)
        odds[repeat] = np.exp(
            np.log(a)
            - np.log(b + x[repeat] - 1)
            + (r + x[repeat]) * (np.log(alpha + big_t[repeat]) - np.log(alpha + t_x[repeat]))
        )
        return np.asarray(numerator / (1 + odds), dtype=np.float64)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float

    @staticmethod
    def log_likelihood(params: FloatArray, x: FloatArray, zbar: FloatArray, weights: FloatArray) -> float:
        """Sum over customers with x >= 1 repeat purchases of log f(zbar | p, q, gamma, x) (Fader & Hardie 2013)."""
        p, q, gamma = params
        px = p * x
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(gamma)
            + px * np.log(x)
            + (px - 1) * np.log(zbar)
            - (px + q) * np.log(gamma + x * zbar)
        )
        return float(np.sum(weights * ll))

    @classmethod
    def fit(cls, x: FloatArray, zbar: FloatArray) -> GammaGamma:
        usable = (x > 0) & (zbar > 0)
        if usable.sum() < 10:
            raise FitError(
                f"Gamma-Gamma needs customers with repeat purchases; {int(usable.sum())} have them"
            )
        x, zbar, _, weights = _grouped(x[usable], zbar[usable], np.zeros(int(usable.sum())))

        def negative(log_params: FloatArray) -> float:
            value = -cls.log_likelihood(np.exp(log_params), x, zbar, weights)
            return value if np.isfinite(value) else 1e300

        start = np.log(np.array([1.0, 1.0, float(np.median(zbar))]))
        p, q, gamma = _optimise(negative, start)
        return cls(float(p), float(q), float(gamma))

    def expected_spend(self, x: FloatArray, zbar: FloatArray) -> FloatArray:
        """E[spend per purchase | x, zbar]: a weighted mean of the customer's own zbar and the population mean
        gamma * p / (q - 1) (defined for q > 1), the weight on its own growing with x."""
        p, q, gamma = self.p, self.q, self.gamma
        own = np.where(x > 0, zbar, 0.0)
        return np.asarray((p * (gamma + x * own)) / (p * x + q - 1), dtype=np.float64)


@dataclass(frozen=True)
class ValueTerms:
    """How lifetime value is summed: over `horizon_months`, each month's expected spend discounted at the
    monthly rate equivalent to `annual_discount_rate`, in the model's time unit of `unit_days` days."""

    horizon_months: int
    annual_discount_rate: float
    unit_days: float

    @property
    def units_per_month(self) -> float:
        return 365.25 / 12 / self.unit_days

    @property
    def monthly_discount(self) -> float:
        return float((1 + self.annual_discount_rate) ** (1 / 12) - 1)


@dataclass(frozen=True)
class ValueModel:
    """A fitted BG/NBD and Gamma-Gamma pair with the terms of its lifetime value: what a version stores."""

    purchases: BgNbd
    spend: GammaGamma
    terms: ValueTerms

    def lifetime_value(
        self, x: FloatArray, t_x: FloatArray, big_t: FloatArray, zbar: FloatArray
    ) -> FloatArray:
        """Discounted expected spend over the horizon: sum over months m of (E[X(m)] - E[X(m-1)]) * E[Z] /
        (1 + d)^m, the discrete form of the discounted expected residual transactions (Fader, Hardie & Lee
        2005, JMR) that analytic CRMs and Lifetimes use."""
        spend = self.spend.expected_spend(x, zbar)
        total = np.zeros_like(x)
        previous = np.zeros_like(x)
        for month in range(1, self.terms.horizon_months + 1):
            cumulative = self.purchases.expected_purchases(month * self.terms.units_per_month, x, t_x, big_t)
            total += (cumulative - previous) / (1 + self.terms.monthly_discount) ** month
            previous = cumulative
        return np.asarray(total * spend, dtype=np.float64)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "bg_nbd": asdict(self.purchases),
            "gamma_gamma": asdict(self.spend),
            "terms": asdict(self.terms),
        }

    @classmethod
    def from_metadata(cls, stored: dict[str, Any]) -> ValueModel:
        model = cls(
            BgNbd(**stored["bg_nbd"]), GammaGamma(**stored["gamma_gamma"]), ValueTerms(**stored["terms"])
        )
        numbers = [*asdict(model.purchases).values(), *asdict(model.spend).values()]
        if not all(np.isfinite(v) and v > 0 for v in numbers):
            raise ValueError(f"the value model's parameters must be positive and finite: {numbers}")
        return model


def _grouped(*columns: FloatArray) -> tuple[FloatArray, ...]:
    """Identical summaries once each, with their count as weight: many customers share (0, 0, T)."""
    stacked = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return (*(unique[:, i] for i in range(unique.shape[1])), counts.astype(np.float64))


def check_example(metadata: dict[str, Any]) -> None:
    """A loaded value version must give its stored example's lifetime values again before it serves."""
    model = ValueModel.from_metadata(metadata["value_model"])
    example = metadata["value_check"]
    x, t_x, big_t, zbar = (
        np.array([r[name] for r in example["records"]], dtype=np.float64)
        for name in ("frequency", "recency", "t", "monetary_value")
    )
    if not np.allclose(model.lifetime_value(x, t_x, big_t, zbar), example["lifetime_value"], rtol=1e-6):
        raise ValueError("the value model scores its stored example differently")
