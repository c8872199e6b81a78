-- The story stage's clock (issue 19): one row, ticked by every transaction that changes the
-- stories under the story lock (a batch's placements, a recluster's release).
--
-- A batch is decided *before* the lock is taken (its reads and writes in its own, uncommitted
-- transaction), then the lock is taken and the clock read again: unchanged, no other story
-- transaction committed since the batch started reading, so what it decided is what it would
-- have decided under the lock, and it commits; changed, it rolls back and decides again under
-- the lock. With one worker the clock never moves under a batch, and the lock is held only to
-- check it and commit.
CREATE TABLE story_clock (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    tick bigint  NOT NULL DEFAULT 0
);
INSERT INTO story_clock DEFAULT VALUES;
