-- silver.ipca: IPCA monthly series from SIDRA, one row per variable and month.
SELECT
    month,
    CAST(value_pct AS DOUBLE)                         AS value_pct,
    trim(variable_code)                               AS variable_code,
    trim(variable)                                    AS variable,
    CAST(month AS DATE)                               AS business_month,
    concat_ws('|', trim(variable_code), CAST(month AS VARCHAR)) AS _business_key,
    _source_file, _source_sheet, _source_row, _content_sha256, _ingested_at
FROM bronze
