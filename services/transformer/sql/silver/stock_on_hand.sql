-- silver.stock_on_hand: balance per depot and material at each snapshot date.
SELECT
    snapshot_date,
    upper(trim(depot_code))                                          AS depot_code,
    trim(item_code)                                                  AS item_code,
    nullif(regexp_replace(trim(item_description), '\s+', ' ', 'g'), '') AS item_description,
    CAST(quantity_on_hand AS DOUBLE)                                 AS quantity_on_hand,
    nullif(upper(trim(unit)), '')                                    AS unit,
    CAST(average_cost_brl AS DOUBLE)                                 AS average_cost_brl,
    CAST(date_trunc('month', snapshot_date) AS DATE)                 AS business_month,
    concat_ws('|', CAST(snapshot_date AS VARCHAR), upper(trim(depot_code)), trim(item_code))
                                                                     AS _business_key,
    _source_file, _source_sheet, _source_row, _content_sha256, _ingested_at
FROM bronze
