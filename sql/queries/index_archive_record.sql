-- Where one archived response lives; pages are tied to their article by canonical URL.
INSERT INTO archive_records (kind, url, article_id, feed_id, warc_file, warc_offset, warc_length,
                             digest, http_status, fetched_at)
VALUES (:kind, :url, (SELECT id FROM articles WHERE canonical_url = :canonical_url), :feed_id,
        :warc_file, :warc_offset, :warc_length, :digest, :http_status, :fetched_at)
ON CONFLICT (warc_file, warc_offset) DO NOTHING;
