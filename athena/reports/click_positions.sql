-- Clicks on search results per position (1 = the first result) of one tenant over event
-- dates [from, to] (the search log, issue #12): how far down shoppers look.
-- Parameters: tenant_id, from, to, limit (positions 1 to limit).
SELECT position, COUNT(*) AS clicks
FROM search_events
WHERE tenant_id = ? AND dt BETWEEN ? AND ? AND kind = 'click' AND position BETWEEN 1 AND ?
GROUP BY position
ORDER BY position
