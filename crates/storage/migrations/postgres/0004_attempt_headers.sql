-- The request and response headers of each attempt, for the Delivery Log's attempt details
-- (one `name: value` per line; NULL where no request was made or no answer came).
ALTER TABLE attempts ADD COLUMN request_headers TEXT;
ALTER TABLE attempts ADD COLUMN response_headers TEXT;
