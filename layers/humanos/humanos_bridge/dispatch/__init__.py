"""The dispatch flow: SQS batches of business events become signed Humanos requests, exactly once.
``service`` runs a batch; ``dead_letters`` parks what cannot be sent, with its reason.
"""
