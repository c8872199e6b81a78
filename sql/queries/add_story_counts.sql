-- One batch's near-duplicate and story counts, added to its run's row.
UPDATE ingestion_runs
   SET near_duplicates = near_duplicates + :near_duplicates,
       stories_new     = stories_new + :stories_new,
       stories_joined  = stories_joined + :stories_joined,
       citations       = citations + :citations
 WHERE id = :run_id;
