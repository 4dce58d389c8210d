"""The quality gate's checks on gold, declared next to the tables they guard.

Errors block a build's gold commits (the previous versions stay live); warnings are recorded in
`gold.dq_results` and the build's HTML report. An error is for what makes a table wrong for
every reader (a duplicated key, an orphan fact, an impossible lead time); a warning for what a
planner should look at but what does not invalidate the rest (stale data, a negative lead time
that the ERP allows when a purchase is registered before its request).
"""

from __future__ import annotations

from services.transformer.quality import (
    AcceptedValues,
    Check,
    Freshness,
    InRange,
    NotNull,
    Relationship,
    RowCountChange,
    UniqueKey,
)
from shared.demand_classes import DEMAND_CLASSES

GOLD_CHECKS: tuple[Check, ...] = (
    # fact_demand
    NotNull(
        name="fact_demand_keys_present",
        table="fact_demand",
        columns=("demand_date", "item_code", "site_code", "quantity"),
    ),
    UniqueKey(
        name="fact_demand_one_row_per_item_site_day",
        table="fact_demand",
        columns=("demand_date", "item_code", "site_code"),
    ),
    InRange(name="fact_demand_quantity_positive", table="fact_demand", column="quantity", min=0),
    Relationship(
        name="fact_demand_item_in_dim_item",
        table="fact_demand",
        columns=("item_code",),
        parent_table="dim_item",
        parent_columns=("item_code",),
    ),
    Relationship(
        name="fact_demand_site_in_dim_site",
        table="fact_demand",
        columns=("site_code",),
        parent_table="dim_site",
        parent_columns=("site_code",),
    ),
    Freshness(
        name="fact_demand_fresh",
        table="fact_demand",
        column="demand_date",
        max_age_days=45,
        severity="warn",
        description="The ERP is exported at least monthly; older data means an export is missing.",
    ),
    # fact_lead_time
    NotNull(name="fact_lead_time_item_present", table="fact_lead_time", columns=("item_code",)),
    InRange(
        name="fact_lead_time_not_negative",
        table="fact_lead_time",
        column="lead_time_days",
        min=0,
        severity="warn",
    ),
    InRange(
        name="fact_lead_time_below_ten_years",
        table="fact_lead_time",
        column="lead_time_days",
        max=3650,
        description="A purchase ten years after its request is a typo in a date; it would "
        "distort every supplier's lead time and reorder point.",
    ),
    Relationship(
        name="fact_lead_time_item_in_dim_item",
        table="fact_lead_time",
        columns=("item_code",),
        parent_table="dim_item",
        parent_columns=("item_code",),
    ),
    Relationship(
        name="fact_lead_time_site_in_dim_site",
        table="fact_lead_time",
        columns=("site_code",),
        parent_table="dim_site",
        parent_columns=("site_code",),
    ),
    Relationship(
        name="fact_lead_time_supplier_in_dim_supplier",
        table="fact_lead_time",
        columns=("supplier_name",),
        parent_table="dim_supplier",
        parent_columns=("supplier_name",),
        severity="warn",
        description="dim_supplier holds suppliers with a lead time of zero days or more; a line "
        "whose only purchases predate their request has none.",
    ),
    # dimensions
    NotNull(name="dim_item_code_present", table="dim_item", columns=("item_code",)),
    UniqueKey(name="dim_item_code_unique", table="dim_item", columns=("item_code",)),
    AcceptedValues(
        name="dim_item_demand_class_known",
        table="dim_item",
        column="demand_class",
        values=DEMAND_CLASSES,
    ),
    RowCountChange(
        name="dim_item_no_sudden_drop",
        table="dim_item",
        max_drop_ratio=0.5,
        description="Materials only accumulate; losing half of them means a broken export.",
    ),
    UniqueKey(name="dim_site_code_unique", table="dim_site", columns=("site_code",)),
    UniqueKey(name="dim_supplier_unique", table="dim_supplier", columns=("supplier_name",)),
    UniqueKey(name="dim_date_unique", table="dim_date", columns=("calendar_date",)),
    # external and stock
    UniqueKey(
        name="fact_external_daily_one_row_per_day",
        table="fact_external_daily",
        columns=("calendar_date",),
    ),
    InRange(
        name="fact_external_temperature_plausible",
        table="fact_external_daily",
        column="temperature_mean_c",
        min=5,
        max=45,
        severity="warn",
    ),
    InRange(
        name="fact_external_selic_plausible",
        table="fact_external_daily",
        column="selic_rate_pct",
        min=0,
        max=50,
        severity="warn",
    ),
    InRange(
        name="fact_external_ptax_plausible",
        table="fact_external_daily",
        column="ptax_usd_sell",
        min=0.5,
        max=20,
        severity="warn",
    ),
    UniqueKey(
        name="fact_stock_one_row_per_snapshot_site_item",
        table="fact_stock",
        columns=("snapshot_date", "site_code", "item_code"),
    ),
    Relationship(
        name="fact_stock_site_in_dim_site",
        table="fact_stock",
        columns=("site_code",),
        parent_table="dim_site",
        parent_columns=("site_code",),
    ),
    Relationship(
        name="fact_stock_item_in_dim_item",
        table="fact_stock",
        columns=("item_code",),
        parent_table="dim_item",
        parent_columns=("item_code",),
        severity="warn",
        description="A material held in stock but never requested has no dim_item row (no demand "
        "class, no forecast): worth a look, not a reason to hold back gold.",
    ),
    InRange(
        name="fact_stock_not_negative",
        table="fact_stock",
        column="quantity_on_hand",
        min=0,
        severity="warn",
    ),
    UniqueKey(
        name="mart_features_one_row_per_item_week",
        table="mart_features",
        columns=("item_code", "week_start"),
    ),
)
