-- gold.fact_stock: stock on hand per snapshot date, site and material, with its value.
SELECT
    snapshot_date,
    depot_code                                          AS site_code,
    item_code,
    quantity_on_hand,
    average_cost_brl,
    quantity_on_hand * average_cost_brl                 AS stock_value_brl,
    unit
FROM silver_stock_on_hand
ORDER BY snapshot_date, site_code, item_code
