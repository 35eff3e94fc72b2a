"""What the three flows share: talking to Humanos (``wire``, ``signing``, ``client``, ``credentials``,
``body_validation``, ``classify``, ``backoff``, ``ratelimit``), sending exactly once (``exactly_once``,
``ledger``), the errors and their answers (``errors``, ``outcomes``), masking, inbound requests and their
senders (``http_request``, ``sender_auth``, ``replays``, ``envelopes``), the queue's message format
(``queue_messages``) and the cached secret reader (``secret_store``).
"""
