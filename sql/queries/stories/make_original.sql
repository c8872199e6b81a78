-- A copy published earlier becomes the original of the old original's group.
UPDATE articles SET duplicate_of = :id
 WHERE (id = :old OR duplicate_of = :old) AND id <> :id;
