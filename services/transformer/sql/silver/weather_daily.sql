-- silver.weather_daily: hourly weather aggregated to days per city. Days are those of the
-- series' own clock (Open-Meteo is requested in GMT, so UTC days, not Brasília days).
-- Input `silver_weather_hourly`: the deduplicated hours of the months being rebuilt.
SELECT
    CAST(observed_at AS DATE)                      AS weather_date,
    city,
    any_value(state)                               AS state,
    avg(temperature_c)                             AS temperature_mean_c,
    min(temperature_c)                             AS temperature_min_c,
    max(temperature_c)                             AS temperature_max_c,
    sum(precipitation_mm)                          AS precipitation_mm,
    avg(relative_humidity_pct)                     AS humidity_mean_pct,
    max(wind_speed_kmh)                            AS wind_max_kmh,
    CAST(count(*) AS INTEGER)                      AS hours,
    CAST(date_trunc('month', CAST(observed_at AS DATE)) AS DATE) AS business_month
FROM silver_weather_hourly
GROUP BY CAST(observed_at AS DATE), city
ORDER BY weather_date, city
