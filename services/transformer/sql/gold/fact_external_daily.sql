-- gold.fact_external_daily: weather, SELIC, PTAX and IPCA aligned on each calendar day.
-- Rates published on business days only are carried forward over weekends and holidays
-- (flagged by *_is_carried); IPCA is the month's variation, the same for all its days.
WITH days AS (
    SELECT calendar_date FROM gold_dim_date
    WHERE calendar_date <= (SELECT max(d) FROM (
        SELECT max(weather_date) AS d FROM silver_weather_daily
        UNION ALL SELECT max(rate_date) FROM silver_selic
        UNION ALL SELECT max(quote_date) FROM silver_ptax_usd_daily))
),
weather AS (
    SELECT weather_date, avg(temperature_mean_c) AS temperature_mean_c,
           min(temperature_min_c) AS temperature_min_c, max(temperature_max_c) AS temperature_max_c,
           avg(precipitation_mm) AS precipitation_mm, avg(humidity_mean_pct) AS humidity_mean_pct
    FROM silver_weather_daily GROUP BY weather_date
),
joined AS (
    SELECT d.calendar_date, w.temperature_mean_c, w.temperature_min_c, w.temperature_max_c,
           w.precipitation_mm, w.humidity_mean_pct,
           s.rate_pct AS selic_rate_pct, p.sell_rate AS ptax_usd_sell,
           i.value_pct AS ipca_month_pct
    FROM days AS d
    LEFT JOIN weather AS w ON w.weather_date = d.calendar_date
    LEFT JOIN silver_selic AS s ON s.rate_date = d.calendar_date
    LEFT JOIN silver_ptax_usd_daily AS p ON p.quote_date = d.calendar_date
    LEFT JOIN (SELECT month, avg(value_pct) AS value_pct FROM silver_ipca
               WHERE variable_code = '63' GROUP BY month) AS i
        ON i.month = CAST(date_trunc('month', d.calendar_date) AS DATE)
)
SELECT
    calendar_date,
    temperature_mean_c, temperature_min_c, temperature_max_c, precipitation_mm, humidity_mean_pct,
    last_value(selic_rate_pct IGNORE NULLS) OVER w                AS selic_rate_pct,
    selic_rate_pct IS NULL
        AND last_value(selic_rate_pct IGNORE NULLS) OVER w IS NOT NULL AS selic_is_carried,
    last_value(ptax_usd_sell IGNORE NULLS) OVER w                 AS ptax_usd_sell,
    ptax_usd_sell IS NULL
        AND last_value(ptax_usd_sell IGNORE NULLS) OVER w IS NOT NULL AS ptax_is_carried,
    ipca_month_pct
FROM joined
WINDOW w AS (ORDER BY calendar_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
ORDER BY calendar_date
