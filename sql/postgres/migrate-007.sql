-- Version 6 -> 7: track's own tables get a `_track_` prefix, as sql/migrate-007.sql. The views
-- that read them are dropped first (views.sql reinstalls them under their new names).
DROP VIEW IF EXISTS judged_winrate, preference_winrate, category_calibration, subject_calibration, run_calibration,
    classwise_bins, reliability_bins, run_summary, predictions, run_bin_gaps, run_bin_totals, stale_run_bins,
    run_totals, stale_question_terms, stale_run_ids CASCADE;
ALTER TABLE top_labels RENAME TO _track_top_labels;
ALTER TABLE run_stats RENAME TO _track_run_stats;
ALTER TABLE run_bins RENAME TO _track_run_bins;
ALTER TABLE stale_runs RENAME TO _track_stale_runs;
