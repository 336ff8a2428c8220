"""JSON webhooks, signed with HMAC-SHA256, as a notify-devino channel: ``type: webhook``."""
