-- silver.selic: SELIC rate (% a year) per calendar day, as the Banco Central publishes it.
SELECT
    rate_date,
    CAST(rate_pct AS DOUBLE)                           AS rate_pct,
    CAST(date_trunc('month', rate_date) AS DATE)       AS business_month,
    CAST(rate_date AS VARCHAR)                         AS _business_key,
    _source_file, _source_sheet, _source_row, _content_sha256, _ingested_at
FROM bronze
