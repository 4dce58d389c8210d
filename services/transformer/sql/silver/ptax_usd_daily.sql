-- silver.ptax_usd_daily: one USD/BRL rate per day: the closing bulletin (FECHAMENTO) when the
-- day has one, otherwise the day's last quote, flagged so analysts can tell them apart.
SELECT
    quote_date,
    arg_max(buy_rate, (bulletin_type = 'FECHAMENTO', quoted_at))   AS buy_rate,
    arg_max(sell_rate, (bulletin_type = 'FECHAMENTO', quoted_at))  AS sell_rate,
    bool_or(bulletin_type = 'FECHAMENTO')                          AS is_closing_rate,
    CAST(count(*) AS INTEGER)                                      AS bulletins,
    CAST(date_trunc('month', quote_date) AS DATE)                  AS business_month
FROM silver_ptax_usd
GROUP BY quote_date
ORDER BY quote_date
