"""The ingest flow: ``POST /events/{source}`` (verify, map as a dry run, queue) and ``POST /requests/{source}``
(verify, map, send to Humanos now). ``service`` holds the routes; ``sender_secrets`` the senders' secrets;
``shared_ratelimit`` the synchronous route's share of Humanos's rate limit.
"""
