-- Backward volume views for dashboards (issue 5). Documented column by column in docs/VIEWS.md.
-- Only primary activities (activities.duplicate_of IS NULL): a run exported as FIT, GPX and TCX
-- counts once. Local dates use the device's UTC offset (activities.utc_offset_s), so a 23:30
-- run belongs to the day the athlete saw on the watch. Plain SQL, no extension needed.

-- Every classified segment of a primary foot-sport activity, with its context and local date.
CREATE OR REPLACE VIEW v_segments AS
SELECT
    s.segment_id,
    s.activity_id,
    coalesce(s.athlete_id, 'default')                                         AS athlete_id,
    make_timestamp(epoch_us(s.start_time) + coalesce(a.utc_offset_s, 0) * 1000000::BIGINT)::DATE AS local_date,
    s.start_time,
    s.end_time,
    s.duration_s,
    s.distance_m,
    s.n_steps,
    s.gait,
    s.direction,
    s.direction = 'backward'                                                  AS is_backward,
    s.confidence,
    s.context,
    a.sport,
    a.sub_sport,
    s.median_speed_mps,
    s.median_cadence_spm,
    CASE WHEN s.median_speed_mps > 0 AND s.median_cadence_spm > 0
         THEN s.median_speed_mps * 60.0 / s.median_cadence_spm END           AS step_length_m,
    s.step_length_ratio,
    s.hr_residual_bpm,
    s.median_grade_pct,
    s.evidence,
    s.classifier_version,
    -- safety: a continuous backward bout of 5 min or more on a road (traffic, kerbs, no lane lines)
    (s.direction = 'backward' AND s.context = 'road' AND s.duration_s >= 300) AS is_long_road_bout
FROM segments s
JOIN activities a ON a.activity_id = s.activity_id
WHERE a.duplicate_of IS NULL;

CREATE OR REPLACE VIEW v_backward_segments AS
SELECT * FROM v_segments WHERE is_backward;

-- One row per primary foot-sport activity, classified or not.
CREATE OR REPLACE VIEW v_activity_backward AS
WITH seg AS (
    SELECT
        activity_id,
        any_value(athlete_id)                                                     AS athlete_id,
        count(*)                                                                  AS n_segments,
        count(*) FILTER (WHERE is_backward)                                       AS n_backward_segments,
        coalesce(sum(duration_s) FILTER (WHERE is_backward), 0)                   AS backward_time_s,
        coalesce(sum(distance_m) FILTER (WHERE is_backward), 0)                   AS backward_distance_m,
        sum(n_steps) FILTER (WHERE is_backward)                                   AS backward_steps,
        coalesce(sum(duration_s) FILTER (WHERE is_backward AND gait = 'run'), 0)  AS backward_run_time_s,
        coalesce(sum(duration_s) FILTER (WHERE is_backward AND gait = 'walk'), 0) AS backward_walk_time_s,
        max(duration_s) FILTER (WHERE is_backward)                                AS longest_backward_bout_s,
        sum(confidence * duration_s) FILTER (WHERE is_backward)
            / nullif(sum(duration_s) FILTER (WHERE is_backward), 0)               AS backward_confidence,
        min(confidence) FILTER (WHERE is_backward)                                AS min_backward_confidence,
        coalesce(sum(duration_s) FILTER (WHERE is_backward AND context = 'track'), 0)     AS backward_track_s,
        coalesce(sum(duration_s) FILTER (WHERE is_backward AND context = 'road'), 0)      AS backward_road_s,
        coalesce(sum(duration_s) FILTER (WHERE is_backward AND context = 'treadmill'), 0) AS backward_treadmill_s,
        coalesce(sum(duration_s) FILTER (WHERE is_backward AND context = 'unknown'), 0)   AS backward_unknown_context_s,
        count(*) FILTER (WHERE is_long_road_bout)                                 AS n_long_road_bouts,
        any_value(classifier_version)                                             AS classifier_version
    FROM v_segments
    GROUP BY activity_id
), eq AS (
    SELECT
        activity_id,
        any_value(fwd_distance_m) FILTER (WHERE profile = 'seed_claims') AS claims_fwd_distance_m,
        any_value(fwd_distance_m) FILTER (WHERE profile = 'evidence')    AS evidence_fwd_distance_m,
        any_value(energy_kcal)    FILTER (WHERE profile = 'seed_claims') AS claims_energy_kcal,
        any_value(energy_kcal)    FILTER (WHERE profile = 'evidence')    AS evidence_energy_kcal,
        any_value(trimp)          FILTER (WHERE profile = 'evidence')    AS backward_trimp
    FROM equivalence
    WHERE level = 'activity'
    GROUP BY activity_id
)
SELECT
    a.activity_id,
    coalesce(seg.athlete_id, 'default')                                       AS athlete_id,
    make_timestamp(epoch_us(a.start_time) + coalesce(a.utc_offset_s, 0) * 1000000::BIGINT)::DATE AS local_date,
    a.start_time,
    a.sport,
    a.sub_sport,
    a.format,
    a.duration_s,
    a.moving_time_s,
    a.distance_m,
    a.avg_heart_rate_bpm,
    a.has_gps,
    a.has_heart_rate,
    a.has_cadence,
    seg.activity_id IS NOT NULL                                               AS is_classified,
    coalesce(seg.n_backward_segments, 0)                                      AS n_backward_segments,
    coalesce(seg.backward_time_s, 0)                                          AS backward_time_s,
    coalesce(seg.backward_distance_m, 0)                                      AS backward_distance_m,
    seg.backward_steps,
    coalesce(seg.backward_run_time_s, 0)                                      AS backward_run_time_s,
    coalesce(seg.backward_walk_time_s, 0)                                     AS backward_walk_time_s,
    coalesce(seg.backward_time_s, 0) / nullif(a.moving_time_s, 0)             AS backward_share_of_moving_time,
    seg.longest_backward_bout_s,
    seg.backward_confidence,
    seg.min_backward_confidence,
    coalesce(seg.backward_track_s, 0)                                         AS backward_track_s,
    coalesce(seg.backward_road_s, 0)                                          AS backward_road_s,
    coalesce(seg.backward_treadmill_s, 0)                                     AS backward_treadmill_s,
    coalesce(seg.backward_unknown_context_s, 0)                               AS backward_unknown_context_s,
    coalesce(seg.n_long_road_bouts, 0)                                        AS n_long_road_bouts,
    eq.claims_fwd_distance_m,
    eq.evidence_fwd_distance_m,
    eq.claims_energy_kcal,
    eq.evidence_energy_kcal,
    eq.backward_trimp,
    seg.classifier_version
FROM activities a
LEFT JOIN seg ON seg.activity_id = a.activity_id
LEFT JOIN eq  ON eq.activity_id  = a.activity_id
WHERE a.duplicate_of IS NULL AND a.is_foot_sport;

-- One row per athlete and local day with at least one primary foot-sport activity.
CREATE OR REPLACE VIEW v_backward_daily AS
SELECT
    athlete_id,
    local_date,
    count(*)                                                   AS n_activities,
    count(*) FILTER (WHERE n_backward_segments > 0)            AS n_activities_with_backward,
    coalesce(sum(moving_time_s), 0)                            AS moving_time_s,
    sum(backward_time_s)                                       AS backward_time_s,
    sum(backward_distance_m)                                   AS backward_distance_m,
    sum(backward_run_time_s)                                   AS backward_run_time_s,
    sum(backward_walk_time_s)                                  AS backward_walk_time_s,
    sum(backward_time_s) / nullif(sum(moving_time_s), 0)       AS backward_share_of_moving_time
FROM v_activity_backward
GROUP BY athlete_id, local_date;

-- One row per athlete and ISO week (Monday), every week from the athlete's first to last
-- active week, so a week without training shows as 0 and the trend line has no holes.
CREATE OR REPLACE VIEW v_backward_weekly AS
WITH daily AS (
    SELECT *, date_trunc('week', local_date)::DATE AS week_start FROM v_backward_daily
), span AS (
    SELECT athlete_id, min(week_start) AS first_week, max(week_start) AS last_week FROM daily GROUP BY athlete_id
), weeks AS (
    SELECT span.athlete_id, w.week_start::DATE AS week_start
    FROM span, LATERAL (SELECT unnest(generate_series(span.first_week, span.last_week, INTERVAL 7 DAY)) AS week_start) w
), agg AS (
    SELECT athlete_id, week_start,
           sum(n_activities)::BIGINT AS n_activities, sum(n_activities_with_backward)::BIGINT AS n_activities_with_backward,
           sum(moving_time_s) AS moving_time_s, sum(backward_time_s) AS backward_time_s,
           sum(backward_distance_m) AS backward_distance_m, sum(backward_run_time_s) AS backward_run_time_s,
           sum(backward_walk_time_s) AS backward_walk_time_s
    FROM daily GROUP BY athlete_id, week_start
), filled AS (
    SELECT w.athlete_id, w.week_start,
           coalesce(agg.n_activities, 0)                AS n_activities,
           coalesce(agg.n_activities_with_backward, 0)  AS n_activities_with_backward,
           coalesce(agg.moving_time_s, 0)               AS moving_time_s,
           coalesce(agg.backward_time_s, 0)             AS backward_time_s,
           coalesce(agg.backward_distance_m, 0)         AS backward_distance_m,
           coalesce(agg.backward_run_time_s, 0)         AS backward_run_time_s,
           coalesce(agg.backward_walk_time_s, 0)        AS backward_walk_time_s
    FROM weeks w LEFT JOIN agg USING (athlete_id, week_start)
)
SELECT
    *,
    backward_time_s / nullif(moving_time_s, 0)                                          AS backward_share_of_moving_time,
    lag(backward_time_s) OVER w                                                         AS prev_week_backward_time_s,
    backward_time_s - lag(backward_time_s) OVER w                                       AS backward_time_change_s,
    100.0 * (backward_time_s - lag(backward_time_s) OVER w) / nullif(lag(backward_time_s) OVER w, 0)
                                                                                        AS backward_time_change_pct,
    lag(backward_distance_m) OVER w                                                     AS prev_week_backward_distance_m,
    100.0 * (backward_distance_m - lag(backward_distance_m) OVER w) / nullif(lag(backward_distance_m) OVER w, 0)
                                                                                        AS backward_distance_change_pct,
    avg(backward_time_s) OVER (PARTITION BY athlete_id ORDER BY week_start ROWS BETWEEN 3 PRECEDING AND CURRENT ROW)
                                                                                        AS backward_time_4wk_avg_s
FROM filled
WINDOW w AS (PARTITION BY athlete_id ORDER BY week_start);

-- Where the backward work happened: track, road, treadmill or unknown, per athlete.
CREATE OR REPLACE VIEW v_backward_by_context AS
SELECT
    athlete_id,
    context,
    count(*)                                                               AS n_segments,
    count(DISTINCT activity_id)                                            AS n_activities,
    sum(duration_s)                                                        AS backward_time_s,
    sum(distance_m)                                                        AS backward_distance_m,
    sum(duration_s) / sum(sum(duration_s)) OVER (PARTITION BY athlete_id)  AS share_of_backward_time,
    max(duration_s)                                                        AS longest_bout_s,
    count(*) FILTER (WHERE is_long_road_bout)                              AS n_long_road_bouts
FROM v_backward_segments
GROUP BY athlete_id, context;

-- Safety: long continuous backward bouts on roads, newest first.
CREATE OR REPLACE VIEW v_safety_road_bouts AS
SELECT segment_id, activity_id, athlete_id, local_date, start_time, end_time, duration_s, distance_m,
       gait, confidence, sport, sub_sport
FROM v_backward_segments
WHERE is_long_road_bout
ORDER BY start_time DESC;
