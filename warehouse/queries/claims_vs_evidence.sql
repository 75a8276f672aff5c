-- The popular claims next to the evidence for all my backward work, by metric.
SELECT
    metric,
    unit,
    round(backward_value)                 AS backward,
    round(claims_value)                   AS claims_say,
    round(evidence_value)                 AS evidence_says,
    round(evidence_low) || '-' || round(evidence_high) AS evidence_band,
    round(claims_over_evidence, 1)        AS claims_over_evidence,
    verdict
FROM v_claims_vs_evidence_totals
WHERE athlete_id = 'default' AND gait = 'all'
ORDER BY metric_order;
