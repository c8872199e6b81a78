-- An article joins a story.
INSERT INTO story_articles (story_id, article_id, relation, score, method)
VALUES (:s, :a, :rel, :score, :method);
