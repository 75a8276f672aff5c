-- Core views: each real activity once. A run exported as FIT, GPX and TCX is stored three
-- times (nothing is thrown away) but only its richest copy has duplicate_of IS NULL.
CREATE OR REPLACE VIEW v_activities AS
SELECT * FROM activities WHERE duplicate_of IS NULL;

CREATE OR REPLACE VIEW v_records AS
SELECT r.* FROM records r JOIN activities a USING (activity_id) WHERE a.duplicate_of IS NULL;
