-- recluster: and its attribution cues.
DELETE FROM article_citations WHERE article_id = ANY(:ids);
