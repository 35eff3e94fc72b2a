"""The way back: Humanos's webhooks become verified, decrypted, deduplicated events on EventBridge.

One module per step, run in this order by :mod:`service` (``ReceiverService.handle_webhook``):

1. ``webhook_auth``: ``x-timestamp`` / ``x-signature`` over the raw body, against every active signature secret;
2. ``decryption``: the envelope ``{iv, data, tag}``, PBKDF2-HMAC-SHA256 then AES-256-GCM (the key derived
   once per container per secret and salt);
3. ``events``: the plaintext validated for its ``api_version`` and normalised (``WebhookEvent``);
4. ``origin``: the business source and event id behind our ``internalId``, when the mapping shows them;
5. ``dedup``: a stable key per Humanos event, claimed in the idempotency table (a replay publishes nothing);
6. ``publish``: one ``PutEvents`` entry on the bus, ``source`` ``humanos.bridge``;
7. ``otp_resend``: after an ``otp.failed`` is published, the code resent when its source's mapping says so
   (``onOtpFailed``), at most N times per request and contact, to phones and the Humanos host only.

The secrets come from ``webhook_secret`` (Secrets Manager, cached). Only this subpackage imports
``cryptography``, so the other functions never load it.
"""
