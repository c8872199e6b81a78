SELECT id FROM sources WHERE slug = :slug;
