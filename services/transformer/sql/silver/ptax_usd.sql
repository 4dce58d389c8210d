-- silver.ptax_usd: every USD/BRL PTAX bulletin (opening, intermediate, closing) of a day.
SELECT
    quoted_at,
    CAST(quoted_at AS DATE)                                   AS quote_date,
    CAST(buy_rate AS DOUBLE)                                  AS buy_rate,
    CAST(sell_rate AS DOUBLE)                                 AS sell_rate,
    strip_accents(upper(trim(bulletin_type)))                 AS bulletin_type,
    CAST(date_trunc('month', quoted_at) AS DATE)              AS business_month,
    concat_ws('|', strftime(quoted_at, '%Y-%m-%dT%H:%M:%S.%f'),
              strip_accents(upper(trim(bulletin_type))))      AS _business_key,
    _source_file, _source_sheet, _source_row, _content_sha256, _ingested_at
FROM bronze
