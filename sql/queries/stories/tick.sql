-- A transaction that changed the stories under the story lock moves the clock: a batch that
-- decided before taking the lock sees that it must decide again. (The row comes back at 1
-- when it is missing, so that the move from the missing row's 0 is seen too.)
INSERT INTO story_clock (tick) VALUES (1)
    ON CONFLICT (one) DO UPDATE SET tick = story_clock.tick + 1;
