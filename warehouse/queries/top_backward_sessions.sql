-- The ten sessions with the most backward distance, with what each was worth.
SELECT
    a.local_date,
    a.activity_id,
    a.sport,
    a.sub_sport,
    a.n_backward_segments,
    round(a.backward_distance_m)                    AS backward_m,
    round(100 * a.backward_share_of_moving_time, 1) AS pct_of_moving_time,
    round(a.claims_fwd_distance_m)                  AS claims_fwd_equivalent_m,
    round(a.evidence_fwd_distance_m)                AS evidence_fwd_equivalent_m,
    round(a.evidence_energy_kcal)                   AS evidence_kcal,
    round(a.backward_trimp, 1)                      AS backward_trimp
FROM v_activity_backward a
WHERE a.n_backward_segments > 0
ORDER BY a.backward_distance_m DESC
LIMIT 10;
