-- Headers of each attempt, for the Delivery Log's attempt details: the request headers that
-- vary per attempt (signatures, timestamp; the others derive from the delivery) and the
-- response's headers, one `name: value` per line; NULL where no request was made or no answer
-- came.
ALTER TABLE attempts ADD COLUMN request_headers TEXT;
ALTER TABLE attempts ADD COLUMN response_headers TEXT;
