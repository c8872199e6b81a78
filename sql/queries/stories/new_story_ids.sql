-- Ids for the stories a batch may open: the stories' sequence's next :n values, in order.
SELECT nextval(pg_get_serial_sequence('stories', 'id')) AS id FROM generate_series(1, :n) ORDER BY 1;
