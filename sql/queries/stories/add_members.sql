-- A batch's new story memberships, in one statement (the membership trigger fires once).
INSERT INTO story_articles (story_id, article_id, relation, score, method)
SELECT s, a, rel, score, method
  FROM unnest(CAST(:s AS bigint[]), CAST(:a AS bigint[]), CAST(:rel AS text[]),
              CAST(:score AS float8[]), CAST(:method AS text[])) AS q(s, a, rel, score, method);
