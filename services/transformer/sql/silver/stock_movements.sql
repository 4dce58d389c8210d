-- silver.stock_movements: one row per movement line; the movement type is normalised to the
-- four ERP kinds without accents (ENTRADA, SAIDA, AJUSTE, TRANSFERENCIA).
SELECT
    movement_date,
    upper(trim(depot_code))                                          AS depot_code,
    trim(item_code)                                                  AS item_code,
    nullif(regexp_replace(trim(item_description), '\s+', ' ', 'g'), '') AS item_description,
    strip_accents(upper(trim(movement_type)))                        AS movement_type,
    CAST(quantity AS DOUBLE)                                         AS quantity,
    nullif(upper(trim(unit)), '')                                    AS unit,
    trim(document_number)                                            AS document_number,
    CAST(unit_cost_brl AS DOUBLE)                                    AS unit_cost_brl,
    CAST(date_trunc('month', movement_date) AS DATE)                 AS business_month,
    concat_ws('|', trim(document_number), trim(item_code), upper(trim(depot_code)),
              strip_accents(upper(trim(movement_type))))             AS _business_key,
    _source_file, _source_sheet, _source_row, _content_sha256, _ingested_at
FROM bronze
