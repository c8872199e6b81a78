DELETE FROM page_claims WHERE claimed_by = :owner;
