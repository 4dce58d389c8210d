"""Demand classes of spare parts (Syntetos–Boylan): the one definition every service uses.

ADI = periods / periods with demand (the mean inter-demand interval); CV² = squared
coefficient of variation of the non-zero demand sizes. Smooth: ADI < 1.32 and CV² < 0.49;
erratic: ADI < 1.32, CV² ≥ 0.49; intermittent: ADI ≥ 1.32, CV² < 0.49; lumpy: both above;
no_demand: no demand at all. The transformer's `gold.dim_item` calls the DuckDB macro built
here (`SQL_MACRO`), the forecaster calls `demand_class`: both come from the same cut-offs.
"""

from __future__ import annotations

import math

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49
DEMAND_CLASSES = ("smooth", "erratic", "intermittent", "lumpy", "no_demand")
# Compared after rounding to 9 decimals: a parallel sum may differ in its last bits between
# two runs, and that must not move a part sitting on a cut-off from one class to another.
ROUND_DIGITS = 9


def demand_class(adi: float | None, cv2: float | None) -> str:
    """The class of a part with these ADI and CV² (ADI None or infinite: no demand)."""
    if adi is None or not math.isfinite(adi):
        return "no_demand"
    cv2 = 0.0 if cv2 is None or math.isnan(cv2) else cv2
    frequent = round(adi, ROUND_DIGITS) < ADI_CUTOFF
    steady = round(cv2, ROUND_DIGITS) < CV2_CUTOFF
    if frequent:
        return "smooth" if steady else "erratic"
    return "intermittent" if steady else "lumpy"


SQL_MACRO = f"""
CREATE OR REPLACE MACRO demand_class(adi, cv2) AS
    CASE
        WHEN adi IS NULL OR isinf(adi) THEN 'no_demand'
        WHEN round(adi, {ROUND_DIGITS}) < {ADI_CUTOFF}
             AND round(coalesce(cv2, 0), {ROUND_DIGITS}) < {CV2_CUTOFF} THEN 'smooth'
        WHEN round(adi, {ROUND_DIGITS}) < {ADI_CUTOFF} THEN 'erratic'
        WHEN round(coalesce(cv2, 0), {ROUND_DIGITS}) < {CV2_CUTOFF} THEN 'intermittent'
        ELSE 'lumpy'
    END
"""
