"""``notify-devino serve``: the durable notification service (outbox, workers, HTTP API).

The core names no channel here either: the service drives the :class:`Dispatcher
<notify_devino.dispatcher.Dispatcher>` and keeps its state in a :class:`Store
<notify_devino.service.store.Store>`.
"""
