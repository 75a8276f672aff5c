-- Safety: continuous backward bouts of 5 minutes or more on roads, newest first.
SELECT
    local_date,
    activity_id,
    strftime(start_time, '%H:%M:%S')      AS start_utc,
    round(duration_s / 60.0, 1)           AS minutes,
    round(distance_m)                     AS metres,
    gait,
    round(confidence, 2)                  AS confidence
FROM v_safety_road_bouts
ORDER BY start_time DESC;
