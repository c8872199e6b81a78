-- An article that matches no story opens one.
INSERT INTO stories (title, first_published_at, last_published_at)
VALUES (:title, :t, :t) RETURNING id;
