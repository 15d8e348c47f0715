-- Schema version 6 -> 7: the tables track keeps for its own work -- the stored summaries and
-- the list of runs whose summaries await recomputation -- get a `_track_` prefix, so that
-- sqlite_master, Datasette and pandas users tell them from the tables and views to query
-- (`track schema` lists those). track runs this with the views and triggers dropped;
-- views.sql reinstalls them under their new names.
ALTER TABLE top_labels RENAME TO _track_top_labels;
ALTER TABLE run_stats RENAME TO _track_run_stats;
ALTER TABLE run_bins RENAME TO _track_run_bins;
ALTER TABLE stale_runs RENAME TO _track_stale_runs;
