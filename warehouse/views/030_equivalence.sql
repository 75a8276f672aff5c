-- Claims next to evidence (issue 5). Documented in docs/VIEWS.md; the numbers come from the
-- `equivalence` table (retroingest.metrics), the profiles from `equivalence_profiles`.
-- Only primary activities (activities.duplicate_of IS NULL).

-- Every equivalence row of a primary activity, any active profile (user profiles included).
CREATE OR REPLACE VIEW v_equivalence AS
SELECT
    e.*,
    make_timestamp(epoch_us(e.start_time) + coalesce(a.utc_offset_s, 0) * 1000000::BIGINT)::DATE AS local_date,
    p.description AS profile_description,
    p.source      AS profile_source
FROM equivalence e
JOIN activities a ON a.activity_id = e.activity_id
JOIN equivalence_profiles p ON p.profile = e.profile AND p.params_hash = e.params_hash
WHERE a.duplicate_of IS NULL;

-- One row per primary activity with backward work: the popular claims beside the evidence.
CREATE OR REPLACE VIEW v_claims_vs_evidence AS
WITH c AS (SELECT * FROM v_equivalence WHERE level = 'activity' AND profile = 'seed_claims'),
     e AS (SELECT * FROM v_equivalence WHERE level = 'activity' AND profile = 'evidence')
SELECT
    e.activity_id,
    e.athlete_id,
    e.local_date,
    e.start_time,
    e.gait,
    e.context,
    e.n_segments,
    e.backward_time_s,
    e.backward_distance_m,
    e.backward_steps,
    c.fwd_distance_m                                   AS claims_fwd_distance_m,
    e.fwd_distance_m                                   AS evidence_fwd_distance_m,
    e.fwd_distance_low_m                               AS evidence_fwd_distance_low_m,
    e.fwd_distance_high_m                              AS evidence_fwd_distance_high_m,
    c.fwd_distance_m / nullif(e.fwd_distance_m, 0)     AS distance_overstatement,
    c.fwd_steps                                        AS claims_fwd_steps,
    e.fwd_steps                                        AS evidence_fwd_steps,
    e.fwd_steps_low                                    AS evidence_fwd_steps_low,
    e.fwd_steps_high                                   AS evidence_fwd_steps_high,
    c.fwd_steps / nullif(e.fwd_steps, 0)               AS steps_overstatement,
    c.energy_kcal                                      AS claims_energy_kcal,
    e.energy_kcal                                      AS evidence_energy_kcal,
    e.energy_kcal_low                                  AS evidence_energy_kcal_low,
    e.energy_kcal_high                                 AS evidence_energy_kcal_high,
    c.energy_kcal / nullif(e.energy_kcal, 0)           AS energy_overstatement,
    e.energy_method                                    AS evidence_energy_method,
    e.fwd_time_s                                       AS evidence_fwd_time_s,
    e.fwd_time_low_s                                   AS evidence_fwd_time_low_s,
    e.fwd_time_high_s                                  AS evidence_fwd_time_high_s,
    e.backward_pace_s_per_km,
    c.fwd_equivalent_pace_s_per_km                     AS claims_fwd_equivalent_pace_s_per_km,
    e.fwd_equivalent_pace_s_per_km                     AS evidence_fwd_equivalent_pace_s_per_km,
    e.body_mass_kg,
    e.body_mass_source,
    e.avg_heart_rate_bpm,
    e.trimp,
    e.trimp_hr_source
FROM e LEFT JOIN c USING (activity_id);

-- Per athlete and gait ('run', 'walk', and 'all' for both), one row per metric: the backward
-- amount, what the claims make of it, what the evidence says (with its band), and a verdict.
CREATE OR REPLACE VIEW v_claims_vs_evidence_totals AS
WITH seg AS (
    SELECT * FROM v_equivalence WHERE level = 'segment' AND profile IN ('seed_claims', 'evidence')
), by_gait AS (
    SELECT
        athlete_id,
        coalesce(gait, 'all') AS gait,
        count(DISTINCT activity_id) FILTER (WHERE profile = 'evidence')  AS n_activities,
        count(*) FILTER (WHERE profile = 'evidence')                     AS n_segments,
        sum(backward_time_s) FILTER (WHERE profile = 'evidence')         AS backward_time_s,
        sum(backward_distance_m) FILTER (WHERE profile = 'evidence')     AS backward_distance_m,
        sum(backward_steps) FILTER (WHERE profile = 'evidence')          AS backward_steps,
        sum(fwd_distance_m) FILTER (WHERE profile = 'seed_claims')       AS c_dist,
        sum(fwd_distance_m) FILTER (WHERE profile = 'evidence')          AS e_dist,
        sum(fwd_distance_low_m) FILTER (WHERE profile = 'evidence')      AS e_dist_lo,
        sum(fwd_distance_high_m) FILTER (WHERE profile = 'evidence')     AS e_dist_hi,
        sum(fwd_steps) FILTER (WHERE profile = 'seed_claims')            AS c_steps,
        sum(fwd_steps) FILTER (WHERE profile = 'evidence')               AS e_steps,
        sum(fwd_steps_low) FILTER (WHERE profile = 'evidence')           AS e_steps_lo,
        sum(fwd_steps_high) FILTER (WHERE profile = 'evidence')          AS e_steps_hi,
        sum(energy_kcal) FILTER (WHERE profile = 'seed_claims')          AS c_kcal,
        sum(energy_kcal) FILTER (WHERE profile = 'evidence')             AS e_kcal,
        sum(energy_kcal_low) FILTER (WHERE profile = 'evidence')         AS e_kcal_lo,
        sum(energy_kcal_high) FILTER (WHERE profile = 'evidence')        AS e_kcal_hi,
        bool_or(body_mass_source = 'assumed_70kg')                       AS body_mass_assumed
    FROM seg
    GROUP BY GROUPING SETS ((athlete_id, gait), (athlete_id))
), metrics AS (
    SELECT athlete_id, gait, n_activities, n_segments, backward_time_s, body_mass_assumed,
           'forward_equivalent_distance' AS metric, 'm' AS unit, 1 AS metric_order,
           backward_distance_m AS backward_value, c_dist AS claims_value,
           e_dist AS evidence_value, e_dist_lo AS evidence_low, e_dist_hi AS evidence_high
    FROM by_gait
    UNION ALL
    SELECT athlete_id, gait, n_activities, n_segments, backward_time_s, body_mass_assumed,
           'forward_equivalent_steps', 'steps', 2, backward_steps, c_steps, e_steps, e_steps_lo, e_steps_hi
    FROM by_gait
    UNION ALL
    SELECT athlete_id, gait, n_activities, n_segments, backward_time_s, body_mass_assumed,
           'energy', 'kcal', 3, NULL, c_kcal, e_kcal, e_kcal_lo, e_kcal_hi
    FROM by_gait
)
SELECT
    athlete_id, gait, metric, unit, metric_order, n_activities, n_segments, backward_time_s,
    backward_value, claims_value, evidence_value, evidence_low, evidence_high,
    claims_value / nullif(evidence_value, 0) AS claims_over_evidence,
    CASE
        WHEN claims_value IS NULL OR evidence_value IS NULL OR evidence_value = 0 THEN 'unknown'
        -- plausible: inside the evidence band, or within 20 % of its central value
        WHEN claims_value BETWEEN evidence_low AND evidence_high
          OR abs(claims_value / evidence_value - 1) <= 0.2 THEN 'plausible'
        WHEN claims_value > evidence_value THEN 'overstated'
        ELSE 'understated'
    END AS verdict,
    body_mass_assumed
FROM metrics;
