-- Weekly backward volume for the last 12 weeks with data, and the change from the week before.
SELECT
    week_start,
    n_activities_with_backward,
    round(backward_time_s / 60.0, 1)              AS backward_min,
    round(backward_distance_m / 1000.0, 2)        AS backward_km,
    round(100 * backward_share_of_moving_time, 1) AS pct_of_moving_time,
    round(backward_time_change_pct, 0)            AS change_vs_prev_week_pct
FROM v_backward_weekly
WHERE athlete_id = 'default'
ORDER BY week_start DESC
LIMIT 12;
