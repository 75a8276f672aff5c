-- How far did I go backward this calendar month, on which surfaces, and what was it worth?
-- (claims next to evidence). Run: retroingest sql "$(cat warehouse/queries/backward_this_month_by_context.sql)"
SELECT
    s.context,
    count(DISTINCT s.activity_id)                         AS activities,
    round(sum(s.duration_s) / 60.0, 1)                    AS backward_min,
    round(sum(s.distance_m) / 1000.0, 2)                  AS backward_km,
    round(sum(c.fwd_distance_m) / 1000.0, 2)              AS claims_fwd_equivalent_km,
    round(sum(e.fwd_distance_m) / 1000.0, 2)              AS evidence_fwd_equivalent_km,
    round(sum(e.fwd_distance_low_m) / 1000.0, 2)          AS evidence_low_km,
    round(sum(e.fwd_distance_high_m) / 1000.0, 2)         AS evidence_high_km,
    round(sum(e.energy_kcal))                             AS evidence_kcal
FROM v_backward_segments s
LEFT JOIN v_equivalence e ON e.segment_id = s.segment_id AND e.profile = 'evidence'
LEFT JOIN v_equivalence c ON c.segment_id = s.segment_id AND c.profile = 'seed_claims'
WHERE s.local_date >= date_trunc('month', current_date)
GROUP BY s.context
ORDER BY backward_min DESC;
