"""Email over SMTP as a notify-devino channel: ``type: smtp``."""
