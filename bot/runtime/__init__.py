"""The arq/Redis performance layer: enqueue functions and the intake, the arq worker
specialisation, automatic pipelining, the Graph outbox, embedded Redis, logs and metrics."""
