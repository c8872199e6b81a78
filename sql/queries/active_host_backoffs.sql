SELECT host, until, http_status, reason
  FROM host_backoff
 WHERE until > now();
