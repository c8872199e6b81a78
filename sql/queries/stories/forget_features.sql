-- Cached features (and embedding) of articles whose text changed: computed again.
DELETE FROM article_features WHERE article_id = ANY(:ids);
