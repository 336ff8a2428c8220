"""Alertmanager's SMS receiver: the webhook payload, matchers, SMS templates, the receiver
endpoint of ``serve`` and acknowledgement by SMS reply."""
