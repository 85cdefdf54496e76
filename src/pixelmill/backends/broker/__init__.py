"""Job brokers: carry ``(job, task)`` messages from the gateway to workers.

``memory`` (in-process, embedded mode: the metadata DB is the durable record and
unfinished tasks are re-published at start) and ``rabbitmq`` (Dramatiq on RabbitMQ
quorum queues with a delivery limit, a dead-letter queue and publisher confirms).
Both pass the contract suite in ``tests/contract/test_broker.py``.
"""
