-- An attribution cue ("según la VOA", "(AFP)"): one row per article and cited outlet.
INSERT INTO article_citations (article_id, cited_name, cited_source_id, cited_article_id, cue)
VALUES (:a, :name, :src, :cited, :cue)
ON CONFLICT (article_id, cited_name) DO UPDATE
   SET cited_source_id = excluded.cited_source_id,
       cited_article_id = excluded.cited_article_id, cue = excluded.cue;
