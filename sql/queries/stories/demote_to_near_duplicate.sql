-- An earlier copy took over: the old original becomes its near-duplicate.
UPDATE story_articles SET relation = 'near_duplicate', method = 'minhash', score = :s
 WHERE article_id = :id;
