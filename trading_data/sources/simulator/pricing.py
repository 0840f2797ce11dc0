"""Black-Scholes prices and greeks for the simulated option chains."""

from __future__ import annotations

import math

import numpy as np

RISK_FREE_RATE = 0.04


def norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF via math.erf, element-wise."""
    erf = np.vectorize(math.erf, otypes=[float])
    return 0.5 * (1.0 + erf(np.asarray(x, dtype=float) / math.sqrt(2.0)))


def norm_pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.asarray(x, dtype=float) ** 2) / math.sqrt(2.0 * math.pi)


def black_scholes(
    spot: float | np.ndarray,
    strike: np.ndarray,
    years: np.ndarray,
    vol: np.ndarray,
    is_call: np.ndarray,
    rate: float = RISK_FREE_RATE,
) -> dict[str, np.ndarray]:
    """Price and greeks (delta, gamma, theta per calendar day, vega per vol point) for European options."""
    strike = np.asarray(strike, dtype=float)
    years = np.maximum(np.asarray(years, dtype=float), 1.0 / 365.0 / 24.0)
    vol = np.maximum(np.asarray(vol, dtype=float), 1e-4)
    spot_arr = np.asarray(spot, dtype=float) * np.ones_like(strike)
    sqrt_t = np.sqrt(years)
    d1 = (np.log(spot_arr / strike) + (rate + 0.5 * vol**2) * years) / (vol * sqrt_t)
    d2 = d1 - vol * sqrt_t
    nd1, nd2, pdf1 = norm_cdf(d1), norm_cdf(d2), norm_pdf(d1)
    discount = strike * np.exp(-rate * years)
    call = spot_arr * nd1 - discount * nd2
    put = call - spot_arr + discount
    price = np.where(is_call, call, put)
    delta = np.where(is_call, nd1, nd1 - 1.0)
    gamma = pdf1 / (spot_arr * vol * sqrt_t)
    vega = spot_arr * pdf1 * sqrt_t / 100.0
    theta_common = -spot_arr * pdf1 * vol / (2.0 * sqrt_t)
    theta = (
        np.where(is_call, theta_common - rate * discount * nd2, theta_common + rate * discount * (1.0 - nd2))
        / 365.0
    )
    return {"price": np.maximum(price, 0.0), "delta": delta, "gamma": gamma, "theta": theta, "vega": vega}
